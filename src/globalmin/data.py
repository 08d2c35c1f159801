"""Stage `prepare_data`: one `.pt` file of uint8 tensors per data set, and reading it back.

A prepared file holds `x_train`, `x_test` (uint8, N x C x H x W), `y_train`, `y_test` (uint8 class ids),
the split that produced them and where the data came from. Training and every study read only prepared
files. What a data set is (sizes, split, source, augmentation) lives in `datasets.py`; this module builds the
arrays: scikit-learn's digits here, torchvision data sets from their fetched raw folder (`sources.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from globalmin.datasets import DatasetFacts, facts
from globalmin.runinfo import UserError, derive_seed, save_torch

FORMAT_VERSION = 1
TENSOR_KEYS = ("x_train", "y_train", "x_test", "y_test")


class DataFileError(UserError):
    """A prepared-data file is missing, truncated or not in the expected format."""


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """Build data set cfg['dataset'] with its options cfg['options'] (from inputs['raw'] if it has raw files)
    into outputs['prepared']."""
    return {"summary": prepare(cfg["dataset"], outputs["prepared"], cfg.get("options", {}), inputs.get("raw"))}


def get_facts(name: str, options: dict[str, Any] | None = None) -> DatasetFacts:
    """The facts of a data set (from the table, or from a user's folder or array file), as a user error that names
    the closest known one."""
    try:
        return facts(name, options)
    except KeyError as err:
        raise UserError(err.args[0]) from err


def seeded_split(n: int, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random train/test split of range(n): (sorted train indices, sorted test indices)."""
    if not 0 < test_size < n:
        raise ValueError(f"test_size must be in (0, {n}), got {test_size}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[test_size:]), np.sort(perm[:test_size])


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's handwritten digits: 1,797 real 8x8 images with 17 grey levels (0..16), scaled to 0..255."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 0..16 -> 0..255 so that every data set shares the uint8 format and the same /255 scaling.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    return images, bunch.target.astype(np.uint8)


def build(f: DatasetFacts, options: dict[str, Any], raw_dir: str | Path | None) -> dict[str, Any]:
    """The arrays, split and source of data set `f` under its options."""
    if f.package == "sklearn":
        parts, source = [_digits()], "sklearn.datasets.load_digits (UCI optical recognition of handwritten digits)"
    elif f.package in ("folder", "arrays"):
        from globalmin import userdata

        found = userdata.read(f.name, options)
        parts, source = list(found["parts"].values()), found["source"]
    else:
        from globalmin.sources import read_splits

        if not raw_dir:
            raise UserError(f"{f.name} is built from raw files: pass the fetched folder (--raw-dir data/raw/{f.name})")
        parts, source = read_splits(f, raw_dir), f"torchvision.datasets.{f.tv_class} (raw files verified by MD5)"
    if not f.pooled:
        (x_tr, y_tr), (x_te, y_te) = parts
        split: dict[str, Any] = {"rule": f"the data set's own train/test split ({source.split(' ')[0]})"}
    else:  # one pool of data: a fixed seeded split, stored with the data
        (x, y), = parts
        test_size, seed = options.get("test_size") or f.test_size, options.get("split_seed", 0)
        train, test = seeded_split(len(y), test_size, seed)
        x_tr, y_tr, x_te, y_te = x[train], y[train], x[test], y[test]
        split = {"rule": "seeded random permutation (numpy default_rng)", "seed": seed,
                 "train_index": train.tolist(), "test_index": test.tolist()}
    return {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te, "split": split, "source": source}


def subsample(built: dict[str, Any], part: str, size: int | None, seed: int) -> dict[str, Any]:
    """Keep a fixed seeded subset of `size` points of the train or test part (None keeps all); recorded."""
    n = len(built[f"y_{part}"])
    if size is None or size >= n:
        return built
    keep = np.sort(np.random.default_rng(seed).permutation(n)[:size])
    built[f"x_{part}"], built[f"y_{part}"] = built[f"x_{part}"][keep], built[f"y_{part}"][keep]
    built["split"][f"{part}_subset"] = {"size": size, "seed": seed, "index": keep.tolist()}
    return built


def prepare(name: str, out: str | Path, options: dict[str, Any] | None = None,
            raw_dir: str | Path | None = None) -> dict[str, Any]:
    """Build data set `name` (from its fetched `raw_dir` if it has raw files) and write its prepared file atomically."""
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    f = get_facts(name, opts)
    built = build(f, opts, raw_dir)
    # the training subset is drawn per run (for_run: each run's data seed draws its own); the test subset is fixed
    built = subsample(built, "test", opts.get("test_subset"), opts.get("subset_seed", 0))
    record = {key: torch.from_numpy(np.ascontiguousarray(built[key])) for key in TENSOR_KEYS}
    record.update(name=name, classes=f.classes, split=built["split"], source=built["source"],
                  options=opts, format_version=FORMAT_VERSION, augmentation=asdict(f.augmentation),
                  note=f.note)
    _check_record(record, str(out))
    save_torch(out, record)
    subset = opts.get("train_subset")
    n_train = min(len(record["y_train"]), subset) if subset else len(record["y_train"])
    return {"name": name, "n_train": n_train, "n_train_stored": len(record["y_train"]),
            "n_test": len(record["y_test"]), "shape": list(record["x_train"].shape[1:]), "classes": f.classes}


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


def resplit(prepared: Prepared, seed: int) -> Prepared:
    """The train/test split of a pooled data set (digits, Semeion, a user's set without a test part) drawn by
    `seed` from the same pool and with the same test size as the stored split (seed = split_seed gives it back)."""
    split = prepared.meta["split"]
    if "train_index" not in split:
        return prepared
    test_index = np.asarray(split["test_index"])
    if "test_subset" in split:  # the test points kept by a fixed test subset
        test_index = test_index[split["test_subset"]["index"]]
    order = np.argsort(np.concatenate([split["train_index"], test_index]))  # pool in the data set's own order
    x = torch.cat([prepared.x_train, prepared.x_test])[torch.from_numpy(order)]
    y = torch.cat([prepared.y_train, prepared.y_test])[torch.from_numpy(order)]
    train, test = (torch.from_numpy(i) for i in seeded_split(len(y), len(prepared.y_test), seed))
    meta = {**prepared.meta, "split": {**split, "seed": seed, "train_index": train.tolist(),
                                       "test_index": test.tolist()}}
    return replace(prepared, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test], meta=meta)


def for_run(prepared: Prepared, data_seed: int | None) -> Prepared:
    """The points a run trains and is tested on: the split of a pooled data set and the training subset
    (data.<name>.train_subset) drawn by the run's data seed (experiment.data_seed, else the run's own seed), so
    that every seed draws its own sample; None keeps the stored split and draws the subset by subset_seed."""
    options = prepared.meta.get("options", {})
    if data_seed is not None:
        prepared = resplit(prepared, data_seed)
    size = options.get("train_subset")
    if not size or size >= prepared.n_train:
        return prepared
    seed = derive_seed(data_seed, "subset") if data_seed is not None else options.get("subset_seed", 0)
    keep = torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(prepared.n_train)[:size]))
    meta = {**prepared.meta, "train_subset": {"size": size, "seed": data_seed, "index": keep.tolist()}}
    return replace(prepared, x_train=prepared.x_train[keep], y_train=prepared.y_train[keep], meta=meta)


def with_condition(prepared: Prepared, condition: dict[str, Any] | None, data_seed: int | None = None) -> Prepared:
    """The data a run of this condition trains on: with `labels: random`, the training labels permuted by a
    seeded permutation (conditions.<name>.label_seed, else the run's data seed, so each seed draws its own);
    test labels untouched. No condition: the data set's labels."""
    if condition is None or condition["labels"] == "dataset":
        return prepared
    label_seed = condition["label_seed"]
    label_seed = int(label_seed if label_seed is not None else (data_seed or 0))
    gen = torch.Generator().manual_seed(derive_seed(label_seed, "labels", prepared.name))
    perm = torch.randperm(prepared.n_train, generator=gen)
    return replace(prepared, y_train=prepared.y_train[perm.to(prepared.y_train.device)],
                   meta={**prepared.meta, "labels": "random", "label_seed": label_seed})


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
        meta={k: record[k] for k in ("split", "source", "options", "format_version", "augmentation", "note")
              if k in record},
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
