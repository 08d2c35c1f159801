"""Your own data set: an image folder or an .npz file, prepared like a built-in one, and every bad input refused in
one line naming the file and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from globalmin import data, userdata
from globalmin.userdata import UserDataError


def write_folder(root, classes=3, per_class=6, size=(8, 8), mode="L", parts=("",), seed=0):
    """A folder data set of random images: root/<part>/<class>/<k>.png."""
    rng = np.random.default_rng(seed)
    for part in parts:
        for c in range(classes):
            folder = root / part / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{k}.png")
    return root


def write_arrays(path, n=40, test=10, classes=4, shape=(8, 8), seed=0, **extra):
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (n, *shape), dtype=np.uint8),
              "y_train": rng.integers(0, classes, n), "x_test": rng.integers(0, 256, (test, *shape), dtype=np.uint8),
              "y_test": rng.integers(0, classes, test)}
    arrays.update(extra)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_a_folder_data_set_is_prepared_with_a_seeded_split(tmp_path):
    root = write_folder(tmp_path / "mine", classes=3, per_class=10, mode="RGB")
    options = {"source": "folder", "path": str(root), "test_size": 6}
    facts = userdata.describe("mine", options)
    assert (facts.classes, facts.train, facts.pooled, facts.test_size) == (3, 30, True, 6)
    summary = data.prepare("mine", tmp_path / "mine.pt", options)
    assert summary == {"name": "mine", "n_train": 24, "n_train_stored": 24, "n_test": 6, "shape": [3, 8, 8],
                       "classes": 3}
    prepared = data.load(tmp_path / "mine.pt")
    first = np.array(Image.open(sorted((root / "class_0").iterdir())[0]))  # the pixels are the files' own
    pool = torch.cat([prepared.x_train, prepared.x_test]).mul(255).round().to(torch.uint8)
    assert any(torch.equal(img, torch.from_numpy(first).permute(2, 0, 1)) for img in pool)
    assert prepared.meta["split"]["train_index"] and data.for_run(prepared, 3).n_train == 24


def test_a_folder_with_train_and_test_keeps_its_parts(tmp_path):
    root = write_folder(tmp_path / "parts", classes=2, per_class=4, parts=("train", "test"))
    summary = data.prepare("parts", tmp_path / "p.pt", {"source": "folder", "path": str(root)})
    assert (summary["n_train"], summary["n_test"], summary["shape"]) == (8, 8, [1, 8, 8])


def test_an_array_file_is_prepared_in_any_channel_layout(tmp_path):
    for shape, channels in (((8, 8), 1), ((8, 8, 3), 3), ((3, 8, 8), 3)):
        path = write_arrays(tmp_path / f"a{len(shape)}{channels}.npz", shape=shape)
        summary = data.prepare("arrays", tmp_path / "a.pt", {"source": "arrays", "path": str(path)})
        assert summary["shape"] == [channels, 8, 8] and (summary["n_train"], summary["n_test"]) == (40, 10)
    pooled = np.savez(tmp_path / "pool.npz", x=np.zeros((20, 6, 6), np.uint8), y=np.arange(20) % 2)
    assert pooled is None
    summary = data.prepare("pool", tmp_path / "b.pt", {"source": "arrays", "path": str(tmp_path / "pool.npz")})
    assert (summary["n_train"], summary["n_test"], summary["classes"]) == (16, 4, 2)  # a fifth held out


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist: fix the path"),
    (lambda p: write_folder(p / "one", classes=1), "has 1 class folder"),
    (lambda p: (write_folder(p / "empty", classes=2), (p / "empty" / "class_9").mkdir())[0],
     "class folder .*class_9 has no images"),
])
def test_bad_folders_are_refused_before_any_image_is_read(tmp_path, make, message):
    with pytest.raises(UserDataError, match=message):
        userdata.describe("mine", {"source": "folder", "path": str(make(tmp_path))})


def test_images_that_do_not_fit_together_name_the_file(tmp_path):
    root = write_folder(tmp_path / "sizes", classes=2, per_class=2)
    Image.new("L", (9, 8)).save(root / "class_1" / "z.png")
    expected = r"mixed sizes: .*class_1/z.png is 9x8x1 \(W x H x C\) but .*0.png is 8x8x1"
    with pytest.raises(UserDataError, match=expected):
        data.prepare("sizes", tmp_path / "s.pt", {"source": "folder", "path": str(root)})
    root = write_folder(tmp_path / "channels", classes=2, per_class=2)
    Image.new("RGB", (8, 8)).save(root / "class_1" / "z.png")
    with pytest.raises(UserDataError, match="mixed channel counts"):
        data.prepare("channels", tmp_path / "c.pt", {"source": "folder", "path": str(root)})
    root = write_folder(tmp_path / "broken", classes=2, per_class=2)
    (root / "class_0" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UserDataError, match=r"image .*class_0/bad.png is unreadable .*: replace or remove it"):
        data.prepare("broken", tmp_path / "b.pt", {"source": "folder", "path": str(root)})


@pytest.mark.parametrize("extra, options, message", [
    ({"y_test": np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])}, {"classes": 4}, "has label 4, outside 0..3"),
    ({"y_train": -np.ones(40, int)}, {}, "has label -1, outside"),
    ({"x_train": np.zeros((40, 8, 8), np.float32)}, {}, "images are float32, not uint8"),
    ({"y_train": np.zeros(40, int), "y_test": np.zeros(10, int)}, {}, "has one class"),
    ({"x_train": None, "y_train": None}, {}, "it needs x_train and y_train"),
])
def test_bad_array_files_are_refused_in_one_line(tmp_path, extra, options, message):
    path = write_arrays(tmp_path / "bad.npz", **extra)
    with pytest.raises(UserDataError, match=message) as err:
        data.prepare("bad", tmp_path / "b.pt", {"source": "arrays", "path": str(path), **options})
    assert "\n" not in str(err.value) and "bad" in str(err.value)
    (tmp_path / "garbage.npz").write_bytes(b"PK garbage")
    with pytest.raises(UserDataError, match="is not a readable .npz file"):
        userdata.describe("bad", {"source": "arrays", "path": str(tmp_path / "garbage.npz")})


def test_the_config_checks_count_what_torchvision_reads():
    from torchvision.datasets.folder import IMG_EXTENSIONS

    assert set(userdata.IMAGE_EXTENSIONS) == set(IMG_EXTENSIONS)
