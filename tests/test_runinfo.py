"""Atomic writes, file modes, derived seeds, device resolution."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from globalmin import runinfo


def test_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    target = tmp_path / "out.json"

    def explode(path):
        path.write_text('{"half": ')
        raise KeyboardInterrupt("killed mid-write")

    with pytest.raises(KeyboardInterrupt):
        runinfo.atomic_write(target, explode)
    assert list(tmp_path.iterdir()) == []
    runinfo.write_json(target, {"a": 1})
    with pytest.raises(KeyboardInterrupt):
        runinfo.atomic_write(target, explode)
    assert runinfo.read_json(target) == {"a": 1} and list(tmp_path.iterdir()) == [target]


def test_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError, match="not JSON compliant"):
        runinfo.write_json(tmp_path / "x.json", {"loss": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_derived_seeds_are_stable_and_distinct():
    assert runinfo.derive_seed(0, "init") == runinfo.derive_seed(0, "init")
    seeds = {runinfo.derive_seed(s, k, e) for s in range(3) for k in ("shuffle", "augment") for e in range(3)}
    assert len(seeds) == 18
    a = torch.rand(3, generator=runinfo.generator(1, "perturb"))
    assert torch.equal(a, torch.rand(3, generator=runinfo.generator(1, "perturb")))


def test_cpu_and_auto_resolve_to_what_the_machine_has(monkeypatch):
    assert runinfo.resolve_device("cpu") == torch.device("cpu")
    for available, expected in ((False, "cpu"), (True, "cuda")):  # torch's answer, as a machine would give it
        monkeypatch.setattr(torch.cuda, "is_available", lambda available=available: available)
        assert runinfo.resolve_device("auto") == torch.device(expected)


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_request_without_cuda_is_a_clear_error(name, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without CUDA, wherever this runs
    with pytest.raises(runinfo.UserError, match=rf"device '{name}' requested but CUDA is not available; set "
                                                r"train.device: auto or cpu"):
        runinfo.resolve_device(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_and_cuda_resolve_to_this_machines_gpu():
    assert runinfo.resolve_device("auto") == torch.device("cuda")
    assert runinfo.resolve_device("cuda:0") == torch.device("cuda:0")
    count = torch.cuda.device_count()
    with pytest.raises(runinfo.UserError, match=f"has {count} CUDA device"):
        runinfo.resolve_device(f"cuda:{count}")


def test_a_cuda_index_beyond_the_machines_devices_is_a_clear_error(monkeypatch):
    # a machine with two GPUs, as torch would report it (this one may have none)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert runinfo.resolve_device("cuda:1") == torch.device("cuda:1")
    assert runinfo.resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(runinfo.UserError, match=r"'cuda:2' requested but this machine has 2 CUDA device\(s\), "
                                                r"cuda:0 to cuda:1; set train.device"):
        runinfo.resolve_device("cuda:2")


WRITE = """
import sys
from pathlib import Path
from globalmin import runinfo
runinfo.write_json(Path(sys.argv[1]) / "new" / "a.json", {"a": 1})
runinfo.save_torch(Path(sys.argv[1]) / "x.pt", {"w": list(range(4))})
"""


@pytest.mark.parametrize("umask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_files_and_folders_get_the_mode_the_users_umask_gives(tmp_path, umask, file_mode, folder_mode):
    """A fresh process started under the umask (runinfo reads it once, at import), as a job under a user's shell."""
    subprocess.run([sys.executable, "-c", WRITE, str(tmp_path)], check=True, umask=umask)
    assert (tmp_path / "new" / "a.json").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "x.pt").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "new").stat().st_mode & 0o777 == folder_mode
    assert runinfo.read_json(tmp_path / "new" / "a.json") == {"a": 1}


def test_torch_files_are_byte_stable(tmp_path):
    runinfo.save_torch(tmp_path / "x.pt", {"w": torch.arange(4.0)})
    runinfo.save_torch(tmp_path / "other-name.pt", {"w": torch.arange(4.0)})
    assert (tmp_path / "x.pt").read_bytes() == (tmp_path / "other-name.pt").read_bytes()
