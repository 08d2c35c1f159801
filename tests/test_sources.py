"""Raw data without network: download from a local server, corrupt, damaged and unreachable sources, offline
import, and partial folders left by a killed fetch."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from archives import N_TEST, N_TRAIN, WRITERS, LocalServer, closed_port, md5
from conftest import TINY_MODEL, TINY_TRAIN, train_base
from globalmin import data, datasets, sources

SHAPES = {"mnist": (1, 28, 28), "kmnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar100": (3, 32, 32),
          "svhn": (3, 32, 32), "semeion": (1, 16, 16)}
FAST = {"retries": 2, "retry_wait": 0, "timeout": 5}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Every data set's tiny archives in one folder, served on 127.0.0.1, with the matching checksums."""
    folder = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(0)
    attrs = {name: writer(folder, rng) for name, (_, writer) in WRITERS.items() if name != "kmnist"}
    attrs["kmnist"] = attrs["mnist"]  # same idx format and file names
    with LocalServer(folder) as server:
        yield folder, server.url, attrs


@pytest.fixture
def checksums(served, monkeypatch):
    """Point torchvision's expected checksums, and the data sets' sizes, at the small archives (their code
    paths stay unchanged)."""
    _, _, attrs = served
    for name, (cls_name, _) in WRITERS.items():
        for attr, value in attrs[name].items():
            monkeypatch.setattr(getattr(torchvision.datasets, cls_name), attr, value)
        f = datasets.FACTS[name]
        tiny = dataclasses.replace(f, train=N_TRAIN + N_TEST if f.pooled else N_TRAIN, test=0 if f.pooled else N_TEST)
        monkeypatch.setitem(datasets.FACTS, name, tiny)
    monkeypatch.setattr(sources, "CONTENT_MD5", {})


@pytest.mark.parametrize("name", list(WRITERS))
def test_download_prepare_and_train_one_epoch(name, served, checksums, tmp_path):
    _, url, _ = served
    raw = tmp_path / "raw" / name
    manifest = sources.fetch(name, datasets.FACTS[name].tv_class, raw, {"source": "download", "mirror": url, **FAST})
    assert (raw / sources.MANIFEST).exists() and manifest["files"][0]["verified"].startswith("archive MD5")
    assert not list(raw.parent.glob(".partial-*"))
    options = {"test_size": 12, "split_seed": 0} if name == "semeion" else {}
    summary = data.prepare(name, tmp_path / f"{name}.pt", options, raw_dir=raw)
    assert summary["shape"] == list(SHAPES[name]) and summary["n_train"] == 30 and summary["n_test"] == 12
    prepared = data.load(tmp_path / f"{name}.pt")
    assert 0 <= prepared.x_train.min() and prepared.x_train.max() <= 1 and prepared.y_train.max() < prepared.classes
    metrics = train_base(tmp_path / f"{name}.pt", tmp_path / "run", 0, True, TINY_MODEL,
                         {**TINY_TRAIN, "epochs": {"plain": 2, "augmented": 2}}, 0.5)
    assert metrics["schedule"]["iters_per_epoch"] == 1 and np.isfinite(metrics["final"]["train_objective"])


def test_corrupt_archive_gives_named_error_and_leaves_nothing(served, checksums, tmp_path):
    folder, url, attrs = served
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    name, md5 = attrs["mnist"]["resources"][0]
    (bad / name).write_bytes(b"not a gzip file at all")
    raw = tmp_path / "raw" / "mnist"
    with LocalServer(bad) as server:
        with pytest.raises(sources.FetchError) as err:
            sources.fetch("mnist", "MNIST", raw, {"mirror": server.url, **FAST})
    message = str(err.value)
    assert name in message and md5 in message and "import-data --dataset mnist" in message
    assert not raw.exists() and not list(raw.parent.glob(".partial-*"))
    with pytest.raises(sources.FetchError, match="missing or incomplete"):
        data.prepare("mnist", tmp_path / "m.pt", {}, raw_dir=raw)


def test_unreachable_host_explains_offline_import(checksums, tmp_path):
    port = next(closed_port())
    with pytest.raises(sources.FetchError, match=r"after 2 tries.*(?s:.*)To import semeion offline"):
        sources.fetch("semeion", "SEMEION", tmp_path / "semeion", {"mirror": f"http://127.0.0.1:{port}/", **FAST})
    assert not (tmp_path / "semeion").exists()


def test_offline_import_verifies_and_places_files(served, checksums, tmp_path):
    folder, _, attrs = served
    drop = tmp_path / "drop" / "nested"
    drop.mkdir(parents=True)
    for name, _ in attrs["mnist"]["resources"]:
        shutil.copy(folder / name, drop / name)
    raw = tmp_path / "raw" / "kmnist"
    manifest = sources.fetch("kmnist", "KMNIST", raw, {"source": "import", "import_dir": str(tmp_path / "drop")})
    assert manifest["source"] == "import" and (raw / "KMNIST" / "raw" / "train-images-idx3-ubyte").exists()
    (drop / "t10k-labels-idx1-ubyte.gz").write_bytes(b"corrupt")
    with pytest.raises(sources.FetchError, match=r"t10k-labels-idx1-ubyte.gz has MD5 [0-9a-f]{32}, but kmnist needs"):
        sources.fetch("kmnist", "KMNIST", tmp_path / "raw2", {"source": "import", "import_dir": str(drop)})
    (drop / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(sources.FetchError, match="t10k-labels-idx1-ubyte.gz \\(MD5 .*\\) not found"):
        sources.fetch("kmnist", "KMNIST", tmp_path / "raw3", {"source": "import", "import_dir": str(drop)})


def test_a_fetched_file_corrupted_later_is_caught(served, checksums, tmp_path):
    _, url, _ = served
    raw = tmp_path / "svhn"
    sources.fetch("svhn", "SVHN", raw, {"mirror": url, **FAST})
    (raw / "test_32x32.mat").write_bytes(b"truncated")
    with pytest.raises(sources.FetchError, match="test_32x32.mat is missing or corrupt"):
        data.prepare("svhn", tmp_path / "s.pt", {}, raw_dir=raw)


def test_import_requires_a_folder(tmp_path):
    with pytest.raises(sources.FetchError, match="import_dir is not set"):
        sources.fetch("mnist", "MNIST", tmp_path / "m", {"source": "import"})


def test_file_lists_come_from_torchvision():
    files = sources.raw_files("CIFAR10", mirror="http://m.example/x/")
    cifar = torchvision.datasets.CIFAR10
    assert files[0].name == cifar.filename and files[0].md5 == cifar.tgz_md5
    assert files[0].urls == ("http://m.example/x/cifar-10-python.tar.gz",)
    assert [f.name for f in sources.raw_files("SVHN")] == ["train_32x32.mat", "test_32x32.mat"]
    assert all(f.folder == "MNIST/raw" for f in sources.raw_files("MNIST"))


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not DEBIAN_FASHION.exists(), reason="Debian package dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_debian_imports_and_prepares(tmp_path):
    raw = tmp_path / "fashion_mnist"
    options = {"source": "import", "import_dir": str(DEBIAN_FASHION)}
    manifest = sources.fetch("fashion_mnist", "FashionMNIST", raw, options)
    assert {f["md5"] for f in manifest["files"]} == set(sources.CONTENT_MD5["FashionMNIST"].values())
    summary = data.prepare("fashion_mnist", tmp_path / "f.pt", {"train_subset": 500}, raw_dir=raw)
    assert summary["n_train"] == 500 and summary["n_test"] == 10000
    record = torch.load(tmp_path / "f.pt", weights_only=True)
    assert len(record["y_train"]) == 60000 and record["options"]["train_subset"] == 500  # drawn by each run
    assert data.for_run(data.load(tmp_path / "f.pt"), 3).n_train == 500


def _serve_damaged(folder: Path, damage, monkeypatch, cls_name: str, attrs: dict) -> None:
    """Apply `damage` to the served files and point torchvision's checksums at the damaged ones."""
    damage(folder)
    for attr, value in attrs.items():
        monkeypatch.setattr(getattr(torchvision.datasets, cls_name), attr, value)


def test_content_damaged_behind_a_good_checksum_gives_one_named_line(served, checksums, tmp_path, monkeypatch):
    folder, url, attrs = served
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    # Semeion cut at a line end: a valid text file with 9 images instead of 42
    lines = (bad / "semeion.data").read_text().splitlines()[:9]
    (bad / "semeion.data").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(torchvision.datasets.SEMEION, "md5_checksum", md5(bad / "semeion.data"))
    # SVHN: a .mat file that is not one
    (bad / "test_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file, but nothing after the header")
    split_list = dict(attrs["svhn"]["split_list"])
    split_list["test"] = [split_list["test"][0], "test_32x32.mat", md5(bad / "test_32x32.mat")]
    monkeypatch.setattr(torchvision.datasets.SVHN, "split_list", split_list)
    # CIFAR-10: a gzip of garbage where the tar should be
    name = attrs["cifar10"]["filename"]
    (bad / name).write_bytes(gzip.compress(b"not a tar archive" * 100))
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "tgz_md5", md5(bad / name))
    with LocalServer(bad) as server:
        for dataset, expected in (("semeion", r"hold \[9\] images.*semeion has \[42\]"),
                                  ("svhn", "cannot be read by torchvision's SVHN"),
                                  ("cifar10", "cannot be read by torchvision's CIFAR10")):
            raw = tmp_path / "raw" / dataset
            with pytest.raises(sources.FetchError, match=expected) as err:
                sources.fetch(dataset, datasets.FACTS[dataset].tv_class, raw, {"mirror": server.url, **FAST})
            assert "\n" not in str(err.value) and "fetch or import" in str(err.value)
            assert not raw.exists() and not list(raw.parent.glob(".partial-*"))


@pytest.mark.parametrize("content", [b"not gzip at all", gzip.compress(b"x" * 1000)[:-30]])
def test_a_damaged_gz_on_import_names_the_file(tmp_path, content, caplog):
    from globalmin.cli import main

    drop = tmp_path / "drop"
    drop.mkdir()
    for name, _ in torchvision.datasets.FashionMNIST.resources:
        (drop / name).write_bytes(content)
    code = main(["import-data", "--dataset", "fashion_mnist", "--from", str(drop), "--out", str(tmp_path / "raw")])
    assert code == 1 and "Traceback" not in caplog.text
    assert "train-images-idx3-ubyte.gz has MD5" in caplog.text and "corrupt or a different version" in caplog.text


def test_a_partial_folder_of_a_killed_fetch_is_removed_by_the_next(served, checksums, tmp_path):
    _, url, _ = served
    raw = tmp_path / "raw" / "mnist"
    stale = raw.parent / f"{sources.PARTIAL}mnist-99999"
    (stale / "MNIST").mkdir(parents=True)
    (stale / "MNIST" / "half-written").write_bytes(b"x")
    other = raw.parent / f"{sources.PARTIAL}kmnist-99999"  # another data set's fetch may still be running
    other.mkdir()
    sources.fetch("mnist", "MNIST", raw, {"mirror": url, **FAST})
    assert not stale.exists() and other.exists() and (raw / sources.MANIFEST).exists()
    dvcignore = (Path(__file__).resolve().parents[1] / ".dvcignore").read_text()
    assert ".partial-*" in dvcignore  # never in DVC's view even while a fetch runs
