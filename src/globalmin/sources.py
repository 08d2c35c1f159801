"""Stage `fetch_raw`: raw files of the torchvision data sets, downloaded or imported, verified, placed atomically.

The file names, URLs and MD5 checksums are torchvision's own (class attributes of its data set classes), and
so are downloading, checking and extracting (`download_url`, `check_integrity`, and the class's own
`download=True` path, which skips verified files and extracts them). This module adds what a pipeline needs
around them: retries with a time-out, offline import from a folder, and atomic placement. Everything is
built in a temporary folder beside the destination and renamed into place only when every file is verified
and extracted, so an interrupted or corrupt fetch leaves nothing a rerun would trust; a partial folder left by
a killed fetch is removed by the next one. Files that pass their checksum but cannot be read (damaged inside)
fail with one line naming the file and the fix, at fetch time and again whenever they are prepared.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import socket
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError

import numpy as np
import torch
import torchvision
from scipy.io.matlab import MatReadError
from torchvision.datasets import utils as tv_utils

from globalmin.datasets import DatasetFacts, facts
from globalmin.runinfo import UserError, write_json

MANIFEST = "MANIFEST.json"
PARTIAL = ".partial-"  # prefix of the folders a fetch builds in; .dvcignore keeps them out of DVC's view
# What torchvision's readers raise on files damaged inside (gzip, tar, pickle, .mat, text): caught only around
# reading raw files, where each of them means "this file is not what it claims to be".
DAMAGE_ERRORS = (OSError, EOFError, ValueError, RuntimeError, KeyError, IndexError, TypeError, tarfile.TarError,
                 pickle.UnpicklingError, MatReadError)

# MD5 of the *decompressed* upstream idx files. Redistributions (for example Debian's dataset-fashion-mnist)
# re-compress the .gz files, which changes the archive's MD5 but not its content; an import accepts such a
# file when its decompressed content has the upstream MD5. Values as published with the data sets' files.
CONTENT_MD5 = {
    "FashionMNIST": {
        "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}


class FetchError(UserError):
    """Raw files could not be downloaded or imported."""


@dataclass(frozen=True)
class RawFile:
    """One file of a data set as torchvision expects it: name, MD5, where to get it, where it goes."""

    name: str
    md5: str
    urls: tuple[str, ...]
    folder: str  # relative to the data set's raw root
    content_md5: str | None = None  # MD5 of the decompressed content, where it is known (see CONTENT_MD5)

    def entry(self, how: str, name: str | None = None, md5: str | None = None) -> dict[str, str]:
        """The manifest record of this file as placed: what was verified, and how."""
        return {"name": name or self.name, "md5": md5 or self.md5, "folder": self.folder, "verified": how}


def _mirrored(url: str, mirror: str | None) -> str:
    return url if not mirror else mirror.rstrip("/") + "/" + url.rsplit("/", 1)[1]


def raw_files(tv_class: str, mirror: str | None = None) -> list[RawFile]:
    """The files torchvision's class `tv_class` needs, read from the class itself."""
    cls = getattr(torchvision.datasets, tv_class)
    if hasattr(cls, "resources") and hasattr(cls, "mirrors"):  # MNIST, KMNIST, FashionMNIST: idx .gz files
        content = CONTENT_MD5.get(tv_class, {})
        return [RawFile(name, md5, tuple(_mirrored(m + name, mirror) for m in cls.mirrors), f"{tv_class}/raw",
                        content.get(name)) for name, md5 in cls.resources]
    if hasattr(cls, "tgz_md5"):  # CIFAR10, CIFAR100: one python-pickle tar.gz
        return [RawFile(cls.filename, cls.tgz_md5, (_mirrored(cls.url, mirror),), "")]
    if hasattr(cls, "split_list") and tv_class == "SVHN":  # .mat per split; 'extra' is not used by the paper
        return [RawFile(name, md5, (_mirrored(url, mirror),), "") for split, (url, name, md5)
                in cls.split_list.items() if split in ("train", "test")]
    if hasattr(cls, "md5_checksum"):  # SEMEION: one text file
        return [RawFile(cls.filename, cls.md5_checksum, (_mirrored(cls.url, mirror),), "")]
    raise FetchError(f"torchvision.datasets.{tv_class} is not a data set globalmin knows how to fetch")


def md5sum(path: Path) -> str:
    """MD5 of a file, for error messages (verification itself is torchvision's check_integrity)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _offline_hint(dataset: str, files: list[RawFile]) -> str:
    names = ", ".join(f"{f.name} (MD5 {f.md5})" for f in files)
    return (f"To import {dataset} offline: fetch {names} on a machine with network access, copy them into one "
            f"folder DIR here, then run `globalmin import-data --dataset {dataset} --from DIR "
            f"--out data/raw/{dataset}`, or set data.{dataset}.source: import and data.{dataset}.import_dir: DIR "
            f"in the config and rerun Snakemake.")


def _download(f: RawFile, dest: Path, retries: int, wait: float, dataset: str,
              files: list[RawFile]) -> dict[str, str]:
    errors = []
    for attempt in range(1, retries + 1):
        for url in f.urls:
            try:
                tv_utils.download_url(url, str(dest.parent), dest.name, f.md5)
                if tv_utils.check_integrity(str(dest), f.md5):
                    return f.entry("archive MD5 (torchvision)")
                errors.append(f"{url}: downloaded file failed its MD5 check")
            except (URLError, OSError, RuntimeError) as err:  # unreachable, time-out, bad checksum
                got = f" (got MD5 {md5sum(dest)})" if dest.exists() else ""
                errors.append(f"try {attempt}, {url}: {type(err).__name__}: {err}{got}")
            dest.unlink(missing_ok=True)
        if attempt < retries:
            time.sleep(wait * attempt)
    raise FetchError(f"could not download {f.name} for {dataset} (expected MD5 {f.md5}) after {retries} tries:\n  "
                     + "\n  ".join(errors[-4:]) + "\n" + _offline_hint(dataset, files))


def _gunzip_if_content_matches(archive: Path, f: RawFile, dest: Path) -> dict[str, str] | None:
    """Decompress `archive` to where torchvision extracts it, if its content has the upstream MD5."""
    import gzip

    if not f.content_md5:
        return None
    target = dest.with_suffix("")  # foo-idx3-ubyte.gz -> foo-idx3-ubyte, torchvision's extracted name
    try:
        with gzip.open(archive, "rb") as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
    except (OSError, EOFError):  # not gzip at all, or cut short: not this file
        target.unlink(missing_ok=True)
        return None
    if tv_utils.check_integrity(str(target), f.content_md5):
        return f.entry("decompressed content MD5 (archive re-compressed by its distributor)", target.name,
                       f.content_md5)
    target.unlink()
    return None


def _import(f: RawFile, source_dir: Path, dest: Path, dataset: str, files: list[RawFile]) -> dict[str, str]:
    candidates = [source_dir / f.name] + sorted(source_dir.rglob(f.name))
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise FetchError(f"{f.name} (MD5 {f.md5}) not found in {source_dir} or below; " + _offline_hint(dataset, files))
    dest.parent.mkdir(parents=True, exist_ok=True)
    if tv_utils.check_integrity(str(found), f.md5):
        shutil.copyfile(found, dest)
        return f.entry("archive MD5 (torchvision)")
    by_content = _gunzip_if_content_matches(found, f, dest)
    if by_content is not None:
        return by_content
    raise FetchError(f"{found} has MD5 {md5sum(found)}, but {dataset} needs {f.name} with MD5 {f.md5}: the file "
                     f"is corrupt or a different version; fetch it again. " + _offline_hint(dataset, files))


def _damaged(f: DatasetFacts, root: Path, err: BaseException) -> FetchError:
    return FetchError(f"the raw files of {f.name} in {root} cannot be read by torchvision's {f.tv_class} "
                      f"({type(err).__name__}: {str(err)[:200]}): they pass their checksums but are damaged or "
                      f"incomplete inside; delete {root} and fetch or import them again")


def _extract(f: DatasetFacts, root: Path) -> None:
    """Let torchvision finish its own layout (extract archives) from verified files: no network is touched."""
    for kwargs in f.tv_splits:
        try:
            getattr(torchvision.datasets, f.tv_class)(str(root), download=True, **kwargs)
        except DAMAGE_ERRORS as err:
            raise _damaged(f, root, err) from err


def read_splits(f: DatasetFacts, root: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(uint8 N x C x H x W images, labels) of each split of a fetched raw folder, read without network access
    and checked against the data set's known sizes, so a file cut at a record boundary cannot pass."""
    root = Path(root)
    check_fetched(f.name, root)
    parts = []
    for kwargs in f.tv_splits:
        try:
            ds = getattr(torchvision.datasets, f.tv_class)(str(root), download=False, **kwargs)
            x = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
            labels = getattr(ds, "targets", None)
            labels = ds.labels if labels is None else labels
            y = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        except DAMAGE_ERRORS as err:
            raise _damaged(f, root, err) from err
        if x.ndim == 3:  # N x H x W grey images
            x = x[:, None]
        elif x.shape[-1] == f.channels and x.shape[1] != f.channels:  # CIFAR stores N x H x W x C
            x = x.transpose(0, 3, 1, 2)
        parts.append((np.ascontiguousarray(x, dtype=np.uint8), y.astype(np.uint8)))
    expected = [f.train] if f.pooled else [f.train, f.test]
    found = [len(y) for _, y in parts]
    shapes = {tuple(x.shape[1:]) for x, _ in parts}
    if found != expected or shapes != {(f.channels, f.size, f.size)}:
        raise FetchError(f"the raw files of {f.name} in {root} hold {found} images of shape {sorted(shapes)}, but "
                         f"{f.name} has {expected} of shape {(f.channels, f.size, f.size)}: a file is truncated or "
                         f"of another data set; delete {root} and fetch or import it again")
    return parts


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """Fetch data set cfg['dataset'] with its options cfg['options'] into outputs['raw']."""
    f = facts(cfg["dataset"])
    if not f.has_raw_files:
        raise UserError(f"{f.name} ships with its Python package ({f.package}); it has no raw files to fetch")
    manifest = fetch(f.name, f.tv_class, outputs["raw"], cfg.get("options", {}))
    return {"manifest": manifest, "summary": {k: manifest[k] for k in ("dataset", "source")}}


def import_data(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """Import data set cfg['dataset'] from the folder cfg['import_dir'] into outputs['raw'] (by hand)."""
    return run({"dataset": cfg["dataset"], "options": {"source": "import", "import_dir": cfg["import_dir"]}},
               inputs, outputs)


def remove_partials(out: Path) -> None:
    """Remove partial folders that a killed fetch of the same data set left beside `out`."""
    for stale in out.parent.glob(f"{PARTIAL}{out.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def fetch(dataset: str, tv_class: str, out: str | Path, options: dict[str, Any]) -> dict[str, Any]:
    """Download (or import, per `options['source']`) a data set's raw files into `out`, atomically."""
    out = Path(out)
    spec = facts(dataset)
    files = raw_files(tv_class, options.get("mirror"))
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_partials(out)
    tmp = out.parent / f"{PARTIAL}{out.name}-{os.getpid()}"
    tmp.mkdir(parents=True)
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(options.get("timeout", 60))
    try:
        entries = []
        for f in files:
            dest = tmp / f.folder / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if options.get("source") == "import":
                if not options.get("import_dir"):
                    raise FetchError(f"data.{dataset}.source is 'import' but data.{dataset}.import_dir is not set; "
                                     f"set it to the folder holding the files")
                entries.append(_import(f, Path(options["import_dir"]), dest, dataset, files))
            else:
                entries.append(_download(f, dest, options.get("retries", 3), options.get("retry_wait", 5.0),
                                         dataset, files))
        _extract(spec, tmp)
        for e in entries:
            e["bytes"] = (tmp / e["folder"] / e["name"]).stat().st_size
        # no fetch time in the manifest: the same files give the same bytes (DVC hashes stay put)
        manifest = {"dataset": dataset, "torchvision_class": tv_class, "source": options.get("source") or "download",
                    "files": entries, "torchvision": torchvision.__version__}
        write_json(tmp / MANIFEST, manifest)
        read_splits(spec, tmp)  # damaged inside, or cut at a record boundary: fail now, with the file named
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        return manifest
    finally:
        socket.setdefaulttimeout(old_timeout)
        shutil.rmtree(tmp, ignore_errors=True)


def check_fetched(dataset: str, root: str | Path) -> dict[str, Any]:
    """The manifest of a fetched raw folder, after re-checking every file's MD5; a clear error otherwise."""
    root = Path(root)
    manifest_path = root / MANIFEST
    if not manifest_path.exists():
        raise FetchError(f"raw data of {dataset} is missing or incomplete ({manifest_path} not found); "
                         f"fetch it with `snakemake {root}` or `globalmin import-data --dataset {dataset} ...`")
    manifest = json.loads(manifest_path.read_text())
    for f in manifest["files"]:
        path = root / f["folder"] / f["name"]
        if not tv_utils.check_integrity(str(path), f["md5"]):
            raise FetchError(f"{path} is missing or corrupt (expected MD5 {f['md5']}); delete {root} and fetch again")
    return manifest
