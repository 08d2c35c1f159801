"""Every fact about every data set, in one torch-free table: sizes, split, raw format, augmentation, report note.

Data preparation, augmentation, the config checks, the report and the docs all read this table, so adding a
data set is one `DatasetFacts` entry here (plus a build function in `data.py` only for a data set that neither
torchvision nor scikit-learn ships). Kept free of torch so that every `snakemake` invocation can import it.

Where a value comes from (see docs/science.md): image sizes, classes and split sizes are the data sets' own;
the augmentations of the six paper data sets come from the authors' related training code (GitHub k9k2/qSGD, the
code of Kawaguchi & Lu's Ordered SGD paper, arXiv 1907.04371: same first author, same six data sets), not from the
Recipe paper; digits and the Fashion-MNIST extra are this project's choices.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

AUTHORS_CODE = ("authors' related code (GitHub k9k2/qSGD: Kawaguchi & Lu's Ordered SGD code, arXiv 1907.04371; "
                "not the Recipe paper's)")
PROJECT = "this project's choice"


@dataclass(frozen=True)
class Augmentation:
    """One data set's training augmentation: crop padding, horizontal flip, affine range; zeros switch a step off."""

    crop_pad: int = 0
    hflip: bool = False
    degrees: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    source: str = PROJECT  # where these values come from

    def describe(self) -> str:
        """A short human description, e.g. 'crop 28 pad 2, horizontal flip'."""
        parts = [f"crop pad {self.crop_pad}"] if self.crop_pad else []
        parts += ["horizontal flip"] if self.hflip else []
        if self.degrees or self.scale != (1.0, 1.0):
            parts.append(f"affine ±{self.degrees:g}°, scale {self.scale[0]:g} to {self.scale[1]:g}")
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class DatasetFacts:
    """What a data set is and where it comes from."""

    name: str
    description: str
    channels: int
    size: int  # images are size x size
    classes: int
    train: int  # training points of its own split, or the whole pool for a seeded split
    test: int  # test points of its own split (0: the pool is split by data.<name>.test_size)
    package: str  # "sklearn" (ships with it), "torchvision" (raw files fetched into data/raw/<name>), or a user's
    # "folder" or "arrays" (userdata.py)
    tv_class: str | None = None  # torchvision.datasets class: URLs, checksums and reader of the raw files
    tv_splits: tuple[dict[str, Any], ...] = ({"train": True}, {"train": False})  # constructor args per split
    test_size: int | None = None  # default held-out size for a seeded split of the pool
    augmentation: Augmentation = field(default_factory=Augmentation)
    note: str = ""  # one line for the report: where its split comes from

    @property
    def pooled(self) -> bool:
        """True when the data set is one pool that this project splits (seeded) into train and test."""
        return self.test == 0

    @property
    def has_raw_files(self) -> bool:
        """True when the data set is fetched (downloaded or imported) into data/raw/<name> first."""
        return self.package == "torchvision"


FACTS: dict[str, DatasetFacts] = {f.name: f for f in [
    DatasetFacts("digits", "scikit-learn handwritten digits, 8x8, 17 grey levels", 1, 8, 10, 1797, 0, "sklearn",
                 test_size=500, augmentation=Augmentation(crop_pad=1, degrees=10.0, scale=(0.9, 1.1)),
                 note="fixed seeded split of scikit-learn's 1,797 images (data.digits.test_size, split_seed); "
                      "the indices are stored in the prepared file"),
    DatasetFacts("mnist", "MNIST handwritten digits", 1, 28, 10, 60000, 10000, "torchvision", "MNIST",
                 augmentation=Augmentation(crop_pad=2, degrees=15.0, scale=(0.85, 1.15), source=AUTHORS_CODE),
                 note="the data set's own train/test split (torchvision)"),
    DatasetFacts("kmnist", "Kuzushiji-MNIST", 1, 28, 10, 60000, 10000, "torchvision", "KMNIST",
                 augmentation=Augmentation(crop_pad=2, source=AUTHORS_CODE),
                 note="the data set's own train/test split (torchvision)"),
    DatasetFacts("fashion_mnist", "Fashion-MNIST (an extra, not in the paper)", 1, 28, 10, 60000, 10000,
                 "torchvision", "FashionMNIST", augmentation=Augmentation(crop_pad=2, hflip=True),
                 note="the data set's own train/test split (torchvision)"),
    DatasetFacts("cifar10", "CIFAR-10", 3, 32, 10, 50000, 10000, "torchvision", "CIFAR10",
                 augmentation=Augmentation(crop_pad=4, hflip=True, source=AUTHORS_CODE),
                 note="the data set's own train/test split (torchvision)"),
    DatasetFacts("cifar100", "CIFAR-100, fine labels", 3, 32, 100, 50000, 10000, "torchvision", "CIFAR100",
                 augmentation=Augmentation(crop_pad=4, hflip=True, source=AUTHORS_CODE),
                 note="the data set's own train/test split (torchvision)"),
    DatasetFacts("svhn", "SVHN, train and test ('extra' unused)", 3, 32, 10, 73257, 26032, "torchvision", "SVHN",
                 tv_splits=({"split": "train"}, {"split": "test"}),
                 augmentation=Augmentation(crop_pad=4, hflip=True, source=AUTHORS_CODE),
                 note="the data set's own train/test split (torchvision; 'extra' unused)"),
    # Semeion's "scale 1.05" is read as a scale range of 1 +/- 0.05 (a reading of the authors' code's value).
    DatasetFacts("semeion", "Semeion handwritten digits, 16x16, binary", 1, 16, 10, 1593, 0, "torchvision",
                 "SEMEION", tv_splits=({},), test_size=593,
                 augmentation=Augmentation(crop_pad=1, degrees=4.0, scale=(0.95, 1.05), source=AUTHORS_CODE),
                 note="fixed seeded 1,000 / 593 split of its 1,593 images (data.semeion.test_size, split_seed); "
                      "the indices are stored in the prepared file"),
]}


def facts(name: str, options: dict[str, Any] | None = None) -> DatasetFacts:
    """The facts of data set `name`: from this table, or, for a data set whose options name a folder or an array
    file (`source: folder | arrays`), from its data (userdata.py). An unknown name's error names the closest one."""
    if options and options.get("source") in ("folder", "arrays"):
        from globalmin import userdata

        return userdata.describe(name, options)
    if name not in FACTS:
        raise KeyError(unknown_message(name, "data set", list(FACTS)) + "; or give your own with "
                       "data.<name>: {source: folder | arrays, path: ...}")
    return FACTS[name]


def unknown_message(name: str, what: str, known: list[str]) -> str:
    """'unknown <what> 'x'; did you mean 'y'? known: ...' for a name not in `known`."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {what} '{name}'{hint} (known: {', '.join(sorted(known))})"


def n_train(name: str, options: dict[str, Any]) -> int:
    """The number of training points n that data set `name` has under its data options (after any subset)."""
    f = facts(name, options)
    n = f.train - (options.get("test_size") or f.test_size) if f.pooled else f.train
    subset = options.get("train_subset")
    return min(n, subset) if subset else n


def width_of(width: int | str | None, n_train: int) -> int:
    """m_H from a width setting: null means n, 'an/b' (a multiple of n: 'n/8', '3n/4', '3n/2') means
    round(a n / b), an integer is itself. Torch-free: the config checks use it too."""
    if width is None:
        return n_train
    if isinstance(width, str):  # validated by the schema's pattern
        factor, _, divisor = width.partition("n")
        return max(1, round(int(factor or 1) * n_train / int(divisor.lstrip("/") or 1)))
    return int(width)


def table() -> str:
    """The facts as a Markdown table: name, source, train / test, augmentation and where it comes from."""
    lines = ["| name | source | train / test | augmentation (when on) |", "|---|---|---|---|"]
    for f in FACTS.values():
        source = f"torchvision `{f.tv_class}`" if f.has_raw_files else "scikit-learn (ships with it)"
        split = (f"{f.train - f.test_size:,} / {f.test_size:,}, seeded split" if f.pooled
                 else f"{f.train:,} / {f.test:,}")
        lines.append(f"| `{f.name}` | {source} | {split} | {f.augmentation.describe()} "
                     f"({f.augmentation.source}) |")
    return "\n".join(lines)


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Print the table (`globalmin datasets`)."""
    print(table())
