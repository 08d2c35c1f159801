"""Run bookkeeping shared by every stage: atomic, byte-stable writes, derived seeds, devices and software versions.

Byte-stable: the same content always gives the same bytes (no temporary names, times or timings inside
content files), so DVC's hashes and byte comparisons change only when results do. Files get the mode the
user's umask gives, like any file a shell would create, so a team can share results.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

if TYPE_CHECKING:
    import torch

# torch is imported where it is used: the figure and report jobs never need it, and it costs a second at start-up.


class UserError(RuntimeError):
    """A failure caused by input (config, data, checkpoints); its message names the problem and the fix."""


def _umask() -> int:
    """The process umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file; mkstemp's 0600 would keep results private


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place with the umask's mode.

    A killed job therefore never leaves a half-written file that a rerun would trust.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    """Write a JSON file atomically (sorted keys, indented, NaN-free)."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_jsonable) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def torch_bytes(obj: Any) -> bytes:
    """What torch.save writes for `obj`, byte-stably.

    torch.save names the archive inside the file after the file it writes to, so saving straight to the
    (randomly named) temporary file would give identical content different bytes; a buffer is named 'archive'.
    """
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_torch(path: str | Path, obj: Any) -> Path:
    """Save a torch object atomically and byte-stably."""
    return write_bytes(path, torch_bytes(obj))


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write a binary file atomically."""
    return atomic_write(path, lambda p: p.write_bytes(data))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray) or type(obj).__name__ == "Tensor":
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def fingerprint(obj: Any) -> str:
    """A stable hash of a run's identity (config, seed, data set, ...), to match a tau-state or resume file to its
    run (torch-free: the workflow computes what a job must find)."""
    import hashlib

    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def derive_seed(seed: int, *keys: int | str) -> int:
    """Derive an independent 63-bit seed for one purpose (init, shuffling, noise, ...) from the run seed."""
    words = [seed] + [k if isinstance(k, int) else int.from_bytes(k.encode(), "little") % (2**32) for k in keys]
    high, low = (int(w) for w in np.random.SeedSequence(words).generate_state(2, dtype=np.uint32))
    return (high << 31) | (low >> 1)


def generator(seed: int, *keys: int | str) -> "torch.Generator":
    """A CPU torch.Generator seeded for one purpose; CPU so that draws are identical on every device."""
    import torch

    return torch.Generator().manual_seed(derive_seed(seed, *keys))


def limit_threads(threads: int) -> None:
    """Use `threads` CPU threads in torch and in NumPy/SciPy's BLAS. Snakemake runs jobs side by side, and a BLAS
    that starts one thread per core in every job oversubscribes the machine (solves many times slower, timed
    once by hand).

    The environment variables reach libraries not loaded yet; those already loaded are limited directly."""
    import sys

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """Float32 matmuls and convolutions without TF32 while inside, restoring the settings after: on CUDA torch
    runs float32 convolutions in TF32 by default (10-bit mantissa), which a measurement compared with the CPU's
    float32 must not do. No effect on the CPU."""
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def resolve_device(name: str) -> "torch.device":
    """Turn 'auto' | 'cpu' | 'cuda[:k]' into a device, preferring CUDA under 'auto'."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise UserError(f"device '{name}' requested but CUDA is not available; set train.device: auto or cpu")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise UserError(f"device '{name}' requested but this machine has {count} CUDA device(s), cuda:0 to "
                        f"cuda:{count - 1}; set train.device to one of them, or cuda or auto")
    return device


def versions() -> dict[str, Any]:
    """Python, platform and the installed libraries' versions, without importing torch: the record of a process
    that computes nothing with it (the report), for which importing torch would add its start-up."""
    import globalmin

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "globalmin": globalmin.__version__,
        "torch": importlib.metadata.version("torch"),  # the distribution's (2.14.1); torch's own adds its build
        # the installed distribution's version: importing torchvision would import torch._dynamo (over a CPU-second)
        "torchvision": importlib.metadata.version("torchvision"),
        "numpy": np.__version__,
    }


def environment(device: "torch.device | None" = None) -> dict[str, Any]:
    """Software versions and hardware of this process, recorded in every run: `versions` with torch's own version
    string (its build too, e.g. 2.14.1+cu130), its threads and the device."""
    import torch

    info = {**versions(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    if device is not None:
        info["device"] = str(device)
        info["device_name"] = device_name(device)
    return info


def device_name(device: "torch.device") -> str:
    """The accelerator's product name on CUDA, else the processor's (`processor_name`)."""
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else processor_name()


def processor_name() -> str:
    """The processor's name as `platform` reports it, or "cpu" where it reports none (as on many Linux hosts)."""
    return platform.processor() or "cpu"
