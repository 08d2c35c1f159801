"""Data-set registry and the prepared-data format: one `.pt` file of uint8 tensors per data set.

A prepared file holds `x_train`, `x_test` (uint8, N x C x H x W), `y_train`, `y_test` (uint8 class ids),
the split that produced them and where the data came from. Training reads only prepared files, so a new
data set needs one registry entry: a function that returns these arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from globalmin.runinfo import UserError, save_torch

FORMAT_VERSION = 1
TENSOR_KEYS = ("x_train", "y_train", "x_test", "y_test")


class DataFileError(UserError):
    """A prepared-data file is missing, truncated or not in the expected format."""


@dataclass(frozen=True)
class DatasetSpec:
    """How to build one data set, and what it looks like."""

    name: str
    channels: int
    size: int
    classes: int
    build: Callable[["DatasetSpec", dict[str, Any]], dict[str, Any]]  # (spec, options) -> arrays, split, source
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    tv_class: str | None = None  # torchvision.datasets class whose raw files this data set is built from


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a data set to the registry."""
    REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> DatasetSpec:
    """Look a data set up by name, with an error that lists the known ones."""
    if name not in REGISTRY:
        raise UserError(f"unknown data set '{name}'; known data sets: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def seeded_split(n: int, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random train/test split of range(n): (sorted train indices, sorted test indices)."""
    if not 0 < test_size < n:
        raise ValueError(f"test_size must be in (0, {n}), got {test_size}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[test_size:]), np.sort(perm[:test_size])


def _build_digits(spec: DatasetSpec, options: dict[str, Any]) -> dict[str, Any]:
    """scikit-learn's handwritten digits: 1,797 real 8x8 images with 17 grey levels (0..16)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 0..16 -> 0..255 so that every data set shares the uint8 format and the same /255 scaling.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.uint8)
    train, test = seeded_split(len(images), options["test_size"], options["split_seed"])
    return {
        "x_train": images[train], "y_train": labels[train], "x_test": images[test], "y_test": labels[test],
        "split": {"rule": "seeded random permutation (numpy default_rng)", "seed": options["split_seed"],
                  "train_index": train.tolist(), "test_index": test.tolist()},
        "source": "sklearn.datasets.load_digits (UCI optical recognition of handwritten digits, test part)",
    }


register(DatasetSpec(
    name="digits", channels=1, size=8, classes=10, build=_build_digits,
    description="scikit-learn handwritten digits, 8x8, fixed seeded split",
    defaults={"test_size": 500, "split_seed": 0},
))


def subsample_train(built: dict[str, Any], size: int | None, seed: int) -> dict[str, Any]:
    """Keep a fixed seeded subset of `size` training points (None keeps all); the choice is recorded."""
    n = len(built["y_train"])
    if size is None or size >= n:
        return built
    keep = np.sort(np.random.default_rng(seed).permutation(n)[:size])
    built["x_train"], built["y_train"] = built["x_train"][keep], built["y_train"][keep]
    built["split"]["train_subset"] = {"size": size, "seed": seed, "index": keep.tolist()}
    return built


def _load_split(tv_class: str, root: str, kwargs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N x C x H x W images, labels) of one torchvision split, read without any network access."""
    import torchvision

    ds = getattr(torchvision.datasets, tv_class)(root, download=False, **kwargs)
    x = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
    if x.ndim == 3:  # N x H x W grey images
        x = x[:, None]
    elif x.shape[-1] == 3:  # CIFAR stores N x H x W x C
        x = x.transpose(0, 3, 1, 2)
    labels = getattr(ds, "targets", None)
    labels = ds.labels if labels is None else labels
    y = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return np.ascontiguousarray(x, dtype=np.uint8), y.astype(np.uint8)


def _build_torchvision(spec: DatasetSpec, options: dict[str, Any]) -> dict[str, Any]:
    """A torchvision data set from its fetched raw folder: its own train/test split, or a seeded one (Semeion)."""
    from globalmin.sources import check_fetched, split_arguments

    root = options.get("raw_dir")
    if not root:
        raise UserError(f"{spec.name} is built from raw files: pass the fetched folder (--raw-dir data/raw/{spec.name})")
    check_fetched(spec.name, root)
    parts = [_load_split(spec.tv_class, root, kw) for kw in split_arguments(spec.tv_class)]
    if len(parts) == 2:
        (x_tr, y_tr), (x_te, y_te) = parts
        split = {"rule": f"torchvision {spec.tv_class} train/test split"}
    else:  # one pool of data: a fixed seeded split, stored with the data
        (x, y), = parts
        train, test = seeded_split(len(y), options["test_size"], options["split_seed"])
        x_tr, y_tr, x_te, y_te = x[train], y[train], x[test], y[test]
        split = {"rule": "seeded random permutation (numpy default_rng)", "seed": options["split_seed"],
                 "train_index": train.tolist(), "test_index": test.tolist()}
    built = {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te, "split": split,
             "source": f"torchvision.datasets.{spec.tv_class} (raw files verified by MD5)"}
    return built


for _name, _cls, _c, _s, _k, _about in [
    ("mnist", "MNIST", 1, 28, 10, "MNIST handwritten digits, 60,000 / 10,000"),
    ("kmnist", "KMNIST", 1, 28, 10, "Kuzushiji-MNIST, 60,000 / 10,000"),
    ("fashion_mnist", "FashionMNIST", 1, 28, 10, "Fashion-MNIST, 60,000 / 10,000 (an extra)"),
    ("cifar10", "CIFAR10", 3, 32, 10, "CIFAR-10, 50,000 / 10,000"),
    ("cifar100", "CIFAR100", 3, 32, 100, "CIFAR-100 (fine labels), 50,000 / 10,000"),
    ("svhn", "SVHN", 3, 32, 10, "SVHN train (73,257) / test (26,032); 'extra' unused"),
]:
    register(DatasetSpec(_name, _c, _s, _k, _build_torchvision, _about, {}, _cls))
register(DatasetSpec("semeion", 1, 16, 10, _build_torchvision, "Semeion handwritten digits, fixed seeded 1,000 / 593",
                     {"test_size": 593, "split_seed": 0}, "SEMEION"))


def prepare(name: str, out: str | Path, options: dict[str, Any] | None = None,
            raw_dir: str | Path | None = None) -> dict[str, Any]:
    """Build data set `name` (from its fetched `raw_dir` if it has raw files) and write its prepared file atomically."""
    spec = get_spec(name)
    opts = {**spec.defaults, **(options or {}), "raw_dir": str(raw_dir) if raw_dir else None}
    built = subsample_train(spec.build(spec, opts), opts.get("train_subset"), opts.get("subset_seed", 0))
    record = {key: torch.from_numpy(np.ascontiguousarray(built[key])) for key in TENSOR_KEYS}
    record.update(name=name, classes=spec.classes, split=built["split"], source=built["source"],
                  options=opts, format_version=FORMAT_VERSION)
    _check_record(record, str(out))
    save_torch(out, record)
    return {"name": name, "n_train": len(record["y_train"]), "n_test": len(record["y_test"]),
            "shape": list(record["x_train"].shape[1:]), "classes": spec.classes}


@dataclass
class Prepared:
    """A prepared data set in memory: inputs scaled to [0, 1] float32, labels int64."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int
    meta: dict[str, Any]

    @property
    def n_train(self) -> int:
        """Number of training points n."""
        return len(self.y_train)

    def to(self, device: torch.device) -> "Prepared":
        """Move every tensor to `device` (the data sets here fit in GPU memory)."""
        moved = {k: getattr(self, k).to(device) for k in TENSOR_KEYS}
        return Prepared(self.name, classes=self.classes, meta=self.meta, **moved)


def load(path: str | Path) -> Prepared:
    """Read a prepared file, with a clear error for a missing, truncated or foreign file."""
    path = Path(path)
    fix = f"delete it and rebuild it with `snakemake {path}` (or `globalmin prepare`)"
    if not path.exists():
        raise DataFileError(f"prepared data file {path} does not exist; build it with `snakemake {path}`")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle garbage, ...: all mean the file is unusable
        raise DataFileError(f"prepared data file {path} is unreadable ({type(err).__name__}: {err}); {fix}") from err
    _check_record(record, f"{path}; {fix}")
    return Prepared(
        name=record["name"],
        x_train=record["x_train"].float().div_(255.0), y_train=record["y_train"].long(),
        x_test=record["x_test"].float().div_(255.0), y_test=record["y_test"].long(),
        classes=int(record["classes"]),
        meta={k: record[k] for k in ("split", "source", "options", "format_version")},
    )


def _check_record(record: Any, where: str) -> None:
    """Validate the prepared-data layout so that bad files fail here, not deep inside a training step."""
    problems = []
    if not isinstance(record, dict):
        problems.append("not a dictionary")
    else:
        for key in TENSOR_KEYS:
            value = record.get(key)
            if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8:
                problems.append(f"'{key}' is not a uint8 tensor")
        if not problems:
            if record["x_train"].ndim != 4 or record["x_test"].shape[1:] != record["x_train"].shape[1:]:
                problems.append("inputs are not N x C x H x W with matching train/test shapes")
            if len(record["x_train"]) != len(record["y_train"]) or len(record["x_test"]) != len(record["y_test"]):
                problems.append("inputs and labels differ in length")
        if record.get("format_version") != FORMAT_VERSION:
            problems.append(f"format_version is {record.get('format_version')!r}, expected {FORMAT_VERSION}")
    if problems:
        raise DataFileError(f"bad prepared data ({'; '.join(problems)}): {where}")
