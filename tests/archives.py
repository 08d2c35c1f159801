"""Tiny archives in the real formats of the paper data sets, and a local HTTP server that serves them.

Each writer produces the files torchvision's class expects (idx gz, CIFAR python pickles in a tar.gz, SVHN
.mat, Semeion .data) with a handful of random images, and returns the class attributes that must change so
that torchvision's checksums match these small files (the URLs come from the `mirror` config option).
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import scipy.io

N_TRAIN, N_TEST = 30, 12  # 30: five CIFAR-10 batches of 6


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_mnist_like(folder: Path, rng: np.random.Generator) -> dict[str, Any]:
    """MNIST/KMNIST/Fashion-MNIST idx files (gzip)."""
    files = []
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        _idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), 0x803)
        _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10, 0x801)
        files += [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
    return {"resources": [(name, md5(folder / name)) for name in files]}


def _pickle_bytes(obj: dict) -> bytes:
    return pickle.dumps(obj, protocol=2)


def write_cifar(folder: Path, rng: np.random.Generator, hundred: bool) -> dict[str, Any]:
    """CIFAR-10 or CIFAR-100 python version: pickled batches in a tar.gz."""
    base = "cifar-100-python" if hundred else "cifar-10-batches-py"
    key = "fine_labels" if hundred else "labels"
    classes = 100 if hundred else 10
    members = {}
    train_names = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    test_names = ["test"] if hundred else ["test_batch"]
    for name in train_names + test_names:
        n = N_TRAIN // len(train_names) if name in train_names else N_TEST
        members[name] = _pickle_bytes({"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                                       key: (np.arange(n) % classes).tolist()})
    meta_name, meta_key = ("meta", "fine_label_names") if hundred else ("batches.meta", "label_names")
    members[meta_name] = _pickle_bytes({meta_key: [f"class{i}" for i in range(classes)]})
    filename = f"{base.split('-python')[0] if hundred else 'cifar-10'}-python.tar.gz"
    with tarfile.open(folder / filename, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{base}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    digest = {name: hashlib.md5(data).hexdigest() for name, data in members.items()}
    return {"filename": filename, "tgz_md5": md5(folder / filename),
            "train_list": [[n, digest[n]] for n in train_names], "test_list": [[n, digest[n]] for n in test_names],
            "meta": {"filename": meta_name, "key": meta_key, "md5": digest[meta_name]}}


def write_svhn(folder: Path, rng: np.random.Generator) -> dict[str, Any]:
    """SVHN cropped digits: .mat files with X (32x32x3xN) and y (labels 1..10, 10 meaning 0)."""
    split_list = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        name = f"{split}_32x32.mat"
        scipy.io.savemat(folder / name, {"X": rng.integers(0, 256, (32, 32, 3, n)).astype(np.uint8),
                                         "y": (np.arange(n) % 10 + 1).reshape(n, 1)})
        split_list[split] = [f"http://unused/{name}", name, md5(folder / name)]
    split_list["extra"] = ["http://unused/extra_32x32.mat", "extra_32x32.mat", "0" * 32]
    return {"split_list": split_list}


def write_semeion(folder: Path, rng: np.random.Generator) -> dict[str, Any]:
    """Semeion: one text line per image, 256 binary pixels then a one-hot label of 10."""
    n = N_TRAIN + N_TEST
    pixels = rng.integers(0, 2, (n, 256)).astype(float)
    onehot = np.eye(10)[np.arange(n) % 10]
    lines = [" ".join(f"{v:.4f}" for v in p) + " " + " ".join(str(int(v)) for v in o) for p, o in zip(pixels, onehot)]
    (folder / "semeion.data").write_text("\n".join(lines) + "\n")
    return {"md5_checksum": md5(folder / "semeion.data")}


WRITERS = {
    "mnist": ("MNIST", write_mnist_like),
    "kmnist": ("KMNIST", write_mnist_like),
    "cifar10": ("CIFAR10", lambda f, r: write_cifar(f, r, hundred=False)),
    "cifar100": ("CIFAR100", lambda f, r: write_cifar(f, r, hundred=True)),
    "svhn": ("SVHN", write_svhn),
    "semeion": ("SEMEION", write_semeion),
}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class LocalServer:
    """A static HTTP server on 127.0.0.1 for one folder, in a background thread."""

    def __init__(self, folder: Path):
        handler = lambda *a, **k: _QuietHandler(*a, directory=str(folder), **k)  # noqa: E731
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]
