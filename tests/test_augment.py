"""Batched per-sample augmentation."""

from __future__ import annotations

import torch

from globalmin import augment
from globalmin.runinfo import generator


def _batch() -> torch.Tensor:
    return torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_crop_is_a_window_of_the_padded_image_per_sample():
    x = _batch()
    out = augment.augment(x, augment.Augmentation(crop_pad=2), generator(0, "a"))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(len(x)):
        match = [(dy, dx) for dy in range(5) for dx in range(5)
                 if torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])]
        assert match, f"sample {i} is not a crop of its padded image"
        offsets.add(match[0])
    assert len(offsets) > 1  # per-sample offsets, not one offset for the batch


def test_flip_is_identity_or_mirror_and_varies():
    x = _batch()
    out = augment.augment(x, augment.Augmentation(hflip=True), generator(0, "f"))
    flipped = [torch.equal(o, s.flip(-1)) for o, s in zip(out, x)]
    assert all(f or torch.equal(o, s) for f, o, s in zip(flipped, out, x)) and 0 < sum(flipped) < len(x)


def test_affine_identity_and_reproducibility():
    x = _batch()
    n = len(x)
    assert torch.allclose(augment.affine(x, torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)), x)
    spec = augment.spec_for("digits")
    a = augment.augment(x, spec, generator(5, "augment", 7))
    b = augment.augment(x, spec, generator(5, "augment", 7))
    c = augment.augment(x, spec, generator(6, "augment", 7))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1


def test_batches_draw_and_augment_each_epoch_at_once_exactly_as_iteration_by_iteration():
    from globalmin.data import Prepared
    from globalmin.train import Batches, make_schedule

    gen = torch.Generator().manual_seed(1)
    data = Prepared("digits", torch.rand(150, 1, 8, 8, generator=gen), torch.randint(0, 10, (150,), generator=gen),
                    torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long), 10, {})
    schedule = make_schedule(150, 64, 3, 0.5)  # 3 batches per epoch, the last one short
    spec = augment.spec_for("digits")
    batches = Batches(7, data, 64, schedule, spec, torch.channels_last)
    for it in range(schedule.total):
        x, y = batches(it)
        idx = batches.indices(it)
        expected = augment.augment(data.x_train[idx], spec, generator(7, "augment", it))
        assert torch.equal(x, expected) and torch.equal(y, data.y_train[idx]), it
        assert x.is_contiguous(memory_format=torch.channels_last)
