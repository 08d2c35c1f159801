"""The data registry and the prepared-data format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from globalmin import data
from globalmin.runinfo import UserError


def test_digits_prepared_with_the_documented_split(digits_file):
    record = torch.load(digits_file, weights_only=True)
    assert record["x_train"].shape == (1297, 1, 8, 8) and record["x_test"].shape == (500, 1, 8, 8)
    assert all(record[k].dtype == torch.uint8 for k in data.TENSOR_KEYS)
    train, test = set(record["split"]["train_index"]), set(record["split"]["test_index"])
    assert not train & test and len(train | test) == 1797
    assert record["x_train"].max() == 255 and set(record["y_train"].unique().tolist()) == set(range(10))


def test_load_scales_to_unit_interval(digits_file):
    prepared = data.load(digits_file)
    assert prepared.x_train.dtype == torch.float32 and prepared.y_train.dtype == torch.int64
    assert 0.0 == prepared.x_train.min() and prepared.x_train.max() == 1.0
    assert prepared.n_train == 1297 and prepared.classes == 10


def test_split_is_fixed_by_its_seed():
    a, b = data.seeded_split(100, 30, 0), data.seeded_split(100, 30, 0)
    c = data.seeded_split(100, 30, 1)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    with pytest.raises(ValueError, match="test_size"):
        data.seeded_split(10, 10, 0)


def test_truncated_file_gives_a_clear_error(digits_file, tmp_path):
    broken = tmp_path / "digits.pt"
    broken.write_bytes(digits_file.read_bytes()[:1000])
    with pytest.raises(data.DataFileError, match="unreadable.*delete it"):
        data.load(broken)


def test_missing_and_foreign_files_are_named(tmp_path):
    with pytest.raises(data.DataFileError, match="does not exist"):
        data.load(tmp_path / "nope.pt")
    torch.save({"x_train": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(data.DataFileError, match="uint8"):
        data.load(tmp_path / "foreign.pt")


def test_unknown_data_set_names_the_closest(tmp_path):
    with pytest.raises(UserError, match="unknown data set 'mnist2'; did you mean 'mnist'\\?.*digits"):
        data.prepare("mnist2", tmp_path / "x.pt")


def test_subsets_of_train_and_test_are_seeded_and_recorded(tmp_path):
    """The test subset is fixed when the data is prepared; the training subset is drawn by each run's data seed."""
    summary = data.prepare("digits", tmp_path / "d.pt", {"test_size": 500, "train_subset": 100, "test_subset": 50})
    assert summary["n_train"] == 100 and summary["n_train_stored"] == 1297 and summary["n_test"] == 50
    record = torch.load(tmp_path / "d.pt", weights_only=True)
    assert record["split"]["test_subset"]["size"] == 50 and len(record["y_train"]) == 1297
    again = data.prepare("digits", tmp_path / "e.pt", {"test_size": 500, "train_subset": 100, "test_subset": 50})
    assert again == summary and (tmp_path / "d.pt").read_bytes() == (tmp_path / "e.pt").read_bytes()
    prepared = data.load(tmp_path / "d.pt")
    runs = [data.for_run(prepared, seed) for seed in (0, 0, 1)]
    assert [r.n_train for r in runs] == [100, 100, 100] and all(len(r.y_test) == 50 for r in runs)
    assert torch.equal(runs[0].x_train, runs[1].x_train) and not torch.equal(runs[0].x_train, runs[2].x_train)
    assert len(runs[0].meta["train_subset"]["index"]) == 100


def test_each_data_seed_draws_its_own_split_of_a_pooled_data_set(tmp_path):
    data.prepare("digits", tmp_path / "d.pt", {"test_size": 500, "split_seed": 0})
    prepared = data.load(tmp_path / "d.pt")
    same, other = data.for_run(prepared, 0), data.for_run(prepared, 7)
    assert torch.equal(same.x_train, prepared.x_train) and torch.equal(same.y_test, prepared.y_test)  # seed 0: stored
    assert other.n_train == 1297 and len(other.y_test) == 500 and not torch.equal(other.x_test, prepared.x_test)
    pool = lambda d: sorted(map(tuple, torch.cat([d.x_train, d.x_test]).flatten(1).tolist()))  # noqa: E731
    assert pool(other) == pool(prepared)  # the same 1,797 images, split another way
