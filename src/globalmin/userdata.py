"""Your own data set in the pipeline: a folder of images or an array file, named in the config.

    data:
      mine: {source: folder, path: /data/mine}      # mine/<class>/*.png, or mine/train/<class>/ and mine/test/<class>/
      yours: {source: arrays, path: yours.npz}     # x_train, y_train[, x_test, y_test] (or x, y)

Images are uint8, grey (mode L) or RGB, all of one size; an array file's images are N x H x W (grey), N x H x W x C
or N x C x H x W (C = 1 or 3), its labels integers 0 .. classes - 1. Without a test part the points are split by a
seeded permutation (`test_size`, default a fifth). The facts (channels, size, classes, n) come from the data:
`describe` counts what the config checks need without reading an image (it runs in every `snakemake`
invocation), and `read` (the prepare job) reads everything and refuses bad input with one line naming the file and
the fix. Reading a folder is torchvision's ImageFolder (its class discovery and file list), with a loader that keeps
grey images grey.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from globalmin.datasets import Augmentation, DatasetFacts
from globalmin.runinfo import UserError

SOURCES = ("folder", "arrays")
# The image files a folder data set reads: torchvision's IMG_EXTENSIONS, repeated here because the config checks,
# which count the files, must not import torchvision (it imports torch); a test checks the two agree.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
DEFAULT_TEST_FRACTION = 0.2


class UserDataError(UserError):
    """A user's data set (folder or array file) that cannot be used; the message names the file and the fix."""


def is_user(options: dict[str, Any] | None) -> bool:
    """Whether a data set's options name a folder or an array file."""
    return bool(options) and options.get("source") in SOURCES


def _path(name: str, options: dict[str, Any]) -> Path:
    path = options.get("path")
    if not path:
        raise UserDataError(f"data.{name}.path is not set: give the {options['source']} holding the data set")
    path = Path(path).expanduser()
    if not path.exists():
        raise UserDataError(f"data.{name}.path = {path} does not exist: fix the path (relative paths are from the "
                            f"workflow's folder)")
    return path


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())  # as torchvision's find_classes: every sub-folder


def _images_in(folder: Path) -> int:
    return sum(1 for _, _, files in os.walk(folder) for f in files if f.lower().endswith(IMAGE_EXTENSIONS))


def _folder_parts(name: str, root: Path) -> dict[str, Path]:
    """{'train': root/train, 'test': root/test} when both exist, else {'pool': root}."""
    if (root / "train").is_dir() and (root / "test").is_dir():
        return {"train": root / "train", "test": root / "test"}
    if not root.is_dir():
        raise UserDataError(f"data.{name}.path = {root} is not a folder: a folder data set is <path>/<class>/<images> "
                            f"(or <path>/train/<class>/ and <path>/test/<class>/)")
    return {"pool": root}


def _count_folder(name: str, root: Path) -> dict[str, Any]:
    """Classes and image counts of a folder data set, checked: at least two classes, none empty."""
    counts, classes = {}, None
    for part, folder in _folder_parts(name, root).items():
        found = _class_folders(folder)
        if len(found) < 2:
            raise UserDataError(f"{folder} has {len(found)} class folder(s): a data set needs at least two classes, "
                                f"one sub-folder of images each")
        for class_dir in found:
            if not _images_in(class_dir):
                raise UserDataError(f"class folder {class_dir} has no images ({', '.join(IMAGE_EXTENSIONS)}): add "
                                    f"images or remove the folder")
        names = [c.name for c in found]
        if classes is not None and names != classes:
            raise UserDataError(f"{folder} has classes {names} but {root / 'train'} has {classes}: train and test "
                                f"need the same class folders")
        classes = names
        counts[part] = sum(_images_in(c) for c in found)
    return {"classes": classes, "counts": counts}


def _npz(name: str, path: Path) -> Any:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:  # not a zip, truncated, pickled objects: all mean the file is unusable
        raise UserDataError(f"data.{name}: {path} is not a readable .npz file ({type(err).__name__}: {err}); write "
                            f"it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)") from err


def _array_keys(name: str, path: Path, files: list[str]) -> dict[str, tuple[str, str]]:
    if {"x_train", "y_train", "x_test", "y_test"} <= set(files):
        return {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
    if {"x_train", "y_train"} <= set(files):  # no test part: a seeded split of these points
        return {"pool": ("x_train", "y_train")}
    if {"x", "y"} <= set(files):
        return {"pool": ("x", "y")}
    raise UserDataError(f"data.{name}: {path} holds {sorted(files)}; it needs x_train and y_train (and x_test, y_test)"
                        f", or x and y")


def test_size(options: dict[str, Any], pool: int) -> int:
    """Held-out points of a data set without a test part: data.<name>.test_size, or a fifth of the pool."""
    return int(options.get("test_size") or max(1, round(DEFAULT_TEST_FRACTION * pool)))


def describe(name: str, options: dict[str, Any]) -> DatasetFacts:
    """The facts of a user data set from its folder or array file, without reading an image: classes, sizes, and
    whether it has its own test part (channels and size are filled in by `read`; 0 here)."""
    path = _path(name, options)
    if options["source"] == "folder":
        found = _count_folder(name, path)
        classes, counts = len(found["classes"]), found["counts"]
    else:
        with _npz(name, path) as arrays:
            keys = _array_keys(name, path, list(arrays.files))
            counts = {part: len(arrays[y]) for part, (_, y) in keys.items()}
            classes = int(options.get("classes") or 1 + max(int(arrays[y].max()) for _, y in keys.values()))
    pooled = "pool" in counts
    total = counts.get("pool", counts.get("train", 0))
    augmentation = Augmentation(**{k: tuple(v) if k == "scale" else v
                                   for k, v in (options.get("augmentation") or {}).items()})
    return DatasetFacts(name, f"your data set ({options['source']} {path})", channels=0, size=0, classes=classes,
                        train=total, test=0 if pooled else counts["test"], package=options["source"],
                        test_size=test_size(options, total) if pooled else None, augmentation=augmentation,
                        note=f"your {options['source']} {path}; " + (
                            "a seeded split (data.<name>.test_size, the run's data seed)" if pooled
                            else "its own train/test parts"))


def _as_nchw(name: str, path: Path, x: np.ndarray) -> np.ndarray:
    if x.dtype != np.uint8:
        raise UserDataError(f"data.{name}: {path} images are {x.dtype}, not uint8: store pixel values 0..255 "
                            f"(e.g. (x * 255).round().astype(numpy.uint8))")
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3):
        return x.transpose(0, 3, 1, 2)
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    raise UserDataError(f"data.{name}: {path} images have shape {x.shape}; expected N x H x W (grey), "
                        f"N x H x W x C or N x C x H x W with C = 1 or 3")


def _labels(name: str, where: str, y: np.ndarray, n: int, classes: int) -> np.ndarray:
    if y.ndim != 1 or len(y) != n or not np.issubdtype(y.dtype, np.integer):
        raise UserDataError(f"data.{name}: {where} labels must be {n} integers (one per image), got {y.dtype} of "
                            f"shape {y.shape}")
    bad = y[(y < 0) | (y >= classes)]
    if bad.size:
        raise UserDataError(f"data.{name}: {where} has label {int(bad[0])}, outside 0..{classes - 1}: labels are class "
                            f"ids 0 .. classes - 1 (set data.{name}.classes if some class has no example here)")
    return y.astype(np.uint8) if classes <= 256 else y


def _read_arrays(name: str, options: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    path = _path(name, options)
    classes = describe(name, options).classes
    if classes < 2:
        raise UserDataError(f"data.{name}: {path} has one class: a data set needs at least two")
    parts = {}
    with _npz(name, path) as arrays:
        for part, (xk, yk) in _array_keys(name, path, list(arrays.files)).items():
            x = _as_nchw(name, path, arrays[xk])
            parts[part] = (x, _labels(name, f"{path}:{yk}", arrays[yk], len(x), classes))
    shapes = {x.shape[1:] for x, _ in parts.values()}
    if len(shapes) > 1:
        raise UserDataError(f"data.{name}: {path} parts have image shapes {sorted(shapes)}: train and test images need "
                            f"one shape")
    return parts


def _open_image(path: str) -> np.ndarray:
    """One image file as H x W x C uint8 (C = 1 grey, 3 RGB), one line naming the file if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in ("L", "RGB", "1"):
                raise UserDataError(f"image {path} has mode {image.mode}: convert it to grey (L) or RGB")
            pixels = np.asarray(image.convert("L") if image.mode == "1" else image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise UserDataError(f"image {path} is unreadable ({err}): replace or remove it") from err
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _read_folder(name: str, options: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from torchvision.datasets import ImageFolder

    root = _path(name, options)
    _count_folder(name, root)  # the checks the config checks made, in case the folder changed since
    parts, first = {}, None
    for part, folder in _folder_parts(name, root).items():
        found = ImageFolder(str(folder), loader=_open_image)  # its class list and files (IMG_EXTENSIONS)
        images, labels = [], []
        for file, label in found.samples:
            pixels = _open_image(file)
            if first is None:
                first = (file, pixels.shape)
            elif pixels.shape != first[1]:
                kind = "channel counts" if pixels.shape[:2] == first[1][:2] else "sizes"
                raise UserDataError(f"data.{name}: images of mixed {kind}: {file} is {pixels.shape[1]}x"
                                    f"{pixels.shape[0]}x{pixels.shape[2]} (W x H x C) but {first[0]} is "
                                    f"{first[1][1]}x{first[1][0]}x{first[1][2]}: resize or convert them to one")
            images.append(pixels)
            labels.append(label)
        parts[part] = (np.stack(images).transpose(0, 3, 1, 2), np.asarray(labels, dtype=np.uint8))
    return parts


def read(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The arrays of a user data set: {'parts': {'train'|'test'|'pool': (x uint8 N x C x H x W, y)}, 'source',
    'classes'}."""
    parts = _read_folder(name, options) if options["source"] == "folder" else _read_arrays(name, options)
    classes = describe(name, options).classes
    return {"parts": parts, "classes": classes,
            "source": f"your {options['source']} {Path(options['path']).expanduser()}"}
