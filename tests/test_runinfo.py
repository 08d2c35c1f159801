"""Atomic writes, derived seeds, device resolution."""

from __future__ import annotations

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


def test_cuda_request_without_cuda_is_a_clear_error():
    assert runinfo.resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(runinfo.UserError, match="CUDA is not available; set train.device"):
            runinfo.resolve_device("cuda")
        assert runinfo.resolve_device("auto").type == "cpu"


def test_a_cuda_index_beyond_the_machines_devices_is_a_clear_error(monkeypatch):
    # a machine with two GPUs, as torch would report it (this one may have none)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert runinfo.resolve_device("cuda:1") == torch.device("cuda:1")
    assert runinfo.resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(runinfo.UserError, match=r"'cuda:2' requested but this machine has 2 CUDA device\(s\), "
                                                r"cuda:0 to cuda:1; set train.device"):
        runinfo.resolve_device("cuda:2")


def test_files_get_the_umask_mode_and_torch_files_are_byte_stable(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        mode = runinfo.FILE_MODE
    finally:
        os.umask(old)
    path = runinfo.write_json(tmp_path / "a.json", {"a": 1})
    assert path.stat().st_mode & 0o777 == mode
    runinfo.save_torch(tmp_path / "x.pt", {"w": torch.arange(4.0)})
    runinfo.save_torch(tmp_path / "other-name.pt", {"w": torch.arange(4.0)})
    assert (tmp_path / "x.pt").read_bytes() == (tmp_path / "other-name.pt").read_bytes()
    assert (tmp_path / "x.pt").stat().st_mode & 0o777 == mode
