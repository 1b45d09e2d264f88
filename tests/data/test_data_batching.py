"""Batching with resumable seeded order, train/validation split, normalisation, augmentation."""
import json

import numpy as np
import pytest

from convnet.data import (Augmenter, BatchIterator, Dataset, Normalizer, epoch_order, random_crop, random_hflip,
                          train_val_split)
from convnet.errors import CheckpointError, ConfigError, ShapeError


def make_ds(n=23, classes=3):
    x = np.arange(n * 2 * 2 * 1, dtype=np.float32).reshape(n, 2, 2, 1)
    return Dataset(x, np.arange(n, dtype=np.int64) % classes, tuple("abc"[:classes]), "toy")


def test_each_epoch_visits_every_sample_once_in_a_seeded_order():
    ds = make_ds()
    it = BatchIterator(ds, batch_size=5, seed=3)
    assert it.steps_per_epoch == 5
    seen = [b.indices for b in it.epoch_batches()]
    assert [len(s) for s in seen] == [5, 5, 5, 5, 3]
    order0 = np.concatenate(seen)
    assert sorted(order0) == list(range(23)) and not np.array_equal(order0, np.arange(23))
    np.testing.assert_array_equal(order0, epoch_order(23, seed=3, epoch=0))
    order1 = np.concatenate([b.indices for b in it.epoch_batches()])
    assert not np.array_equal(order0, order1) and it.epoch == 2
    b = BatchIterator(ds, batch_size=5, seed=3).next_batch()
    np.testing.assert_array_equal(b.x, ds.x[b.indices])
    np.testing.assert_array_equal(b.y, ds.y[b.indices])


def test_resume_mid_epoch_gives_the_same_batches():
    ds = make_ds()
    straight = BatchIterator(ds, batch_size=4, seed=11)
    expected = [straight.next_batch().indices for _ in range(17)]
    first = BatchIterator(ds, batch_size=4, seed=11)
    got = [first.next_batch().indices for _ in range(8)]
    state = json.loads(json.dumps(first.state_dict()))  # it survives JSON (checkpoint metadata)
    second = BatchIterator(ds, batch_size=4, seed=11)
    second.load_state_dict(state)
    got += [second.next_batch().indices for _ in range(9)]
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)


def test_drop_last_and_no_shuffle():
    it = BatchIterator(make_ds(), batch_size=5, shuffle=False, drop_last=True)
    batches = list(it.epoch_batches())
    assert it.steps_per_epoch == 4 and [len(b.indices) for b in batches] == [5] * 4
    np.testing.assert_array_equal(np.concatenate([b.indices for b in batches]), np.arange(20))
    assert [b.index for b in batches] == [0, 1, 2, 3] and it.epoch == 1


def test_iterator_refuses_other_settings_and_bad_values():
    ds = make_ds()
    state = BatchIterator(ds, batch_size=4, seed=1).state_dict()
    with pytest.raises(CheckpointError, match="seed=1"):
        BatchIterator(ds, batch_size=4, seed=2).load_state_dict(state)
    with pytest.raises(CheckpointError, match="n=23"):
        BatchIterator(make_ds(24), batch_size=4, seed=1).load_state_dict(state)
    with pytest.raises(CheckpointError, match="cursor"):
        BatchIterator(ds, batch_size=4, seed=1).load_state_dict({**state, "cursor": 3})
    with pytest.raises(ConfigError, match="batch_size"):
        BatchIterator(ds, batch_size=0)
    with pytest.raises(ConfigError, match="too few"):
        BatchIterator(ds, batch_size=30, drop_last=True)


def test_train_val_split_is_seeded_stratified_and_disjoint():
    ds = make_ds(60)
    tr, va = train_val_split(ds, val_fraction=0.2, seed=5)
    assert len(tr) == 48 and len(va) == 12 and np.bincount(va.y).tolist() == [4, 4, 4]
    ids_tr, ids_va = set(tr.x[:, 0, 0, 0].tolist()), set(va.x[:, 0, 0, 0].tolist())
    assert not ids_tr & ids_va and len(ids_tr | ids_va) == 60
    tr2, va2 = train_val_split(ds, val_fraction=0.2, seed=5)
    np.testing.assert_array_equal(va.x, va2.x)
    _, va3 = train_val_split(ds, val_fraction=0.2, seed=6)
    assert not np.array_equal(va.x, va3.x)
    with pytest.raises(ConfigError, match="val_fraction"):
        train_val_split(ds, val_fraction=1.0)


def test_normalizer_statistics_come_from_training_data():
    rng = np.random.default_rng(0)
    x = (rng.random((50, 4, 4, 3)) * [1, 2, 3] + [0, 5, -1]).astype(np.float32)
    norm = Normalizer.fit(x, chunk=7)
    np.testing.assert_allclose(norm.mean, x.reshape(-1, 3).astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(norm.std, x.reshape(-1, 3).astype(np.float64).std(0), rtol=1e-10)
    z = norm(x)
    assert z.dtype == np.float32 and z.shape == x.shape
    np.testing.assert_allclose(z.reshape(-1, 3).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.reshape(-1, 3).std(0), 1, atol=1e-5)
    again = Normalizer.from_state_dict(json.loads(json.dumps(norm.state_dict())))
    np.testing.assert_array_equal(again(x), z)
    flat = Normalizer.fit(x, per_channel=False)
    assert flat.mean.shape == (1,)
    const = Normalizer.fit(np.ones((3, 2, 2, 1), np.float32))
    np.testing.assert_array_equal(const(np.ones((1, 2, 2, 1), np.float32)), 0)  # zero std: divide by 1
    with pytest.raises(ShapeError, match="3 channels"):
        norm(np.zeros((1, 4, 4, 1), np.float32))
    with pytest.raises(CheckpointError):
        Normalizer.from_state_dict({"mean": [0.0]})


def test_random_crop_takes_a_window_of_the_zero_padded_image():
    rng = np.random.default_rng(0)
    x = rng.random((20, 5, 6, 2)).astype(np.float32) + 1  # all nonzero, so padding is visible
    out = random_crop(x, padding=2, rng=np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    offsets = set()
    for i in range(len(x)):
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if np.array_equal(padded[i, dy:dy + 5, dx:dx + 6], out[i])]
        assert hits, i
        offsets.add(hits[0])
    assert len(offsets) > 5  # offsets really vary
    np.testing.assert_array_equal(random_crop(x, padding=0, rng=rng), x)


def test_random_hflip():
    x = np.arange(4 * 2 * 3 * 1, dtype=np.float32).reshape(4, 2, 3, 1)
    np.testing.assert_array_equal(random_hflip(x, p=1.0, rng=np.random.default_rng(0)), x[:, :, ::-1, :])
    np.testing.assert_array_equal(random_hflip(x, p=0.0, rng=np.random.default_rng(0)), x)
    mixed = random_hflip(np.repeat(x[:1], 64, 0), p=0.5, rng=np.random.default_rng(0))
    flipped = [np.array_equal(m, x[0, :, ::-1]) for m in mixed]
    assert 10 < sum(flipped) < 54 and all(f or np.array_equal(m, x[0]) for f, m in zip(flipped, mixed))
    with pytest.raises(ConfigError):
        random_hflip(x, p=2.0, rng=np.random.default_rng(0))
    with pytest.raises(ShapeError):
        random_hflip(x[0], rng=np.random.default_rng(0))


def test_augmenter_is_a_pure_function_of_seed_epoch_and_batch():
    x = np.random.default_rng(0).random((8, 6, 6, 3)).astype(np.float32)
    aug = Augmenter(crop_padding=2, hflip=True, seed=4)
    a = aug(x, epoch=3, batch_index=5)
    np.testing.assert_array_equal(a, Augmenter(crop_padding=2, hflip=True, seed=4)(x, epoch=3, batch_index=5))
    assert not np.array_equal(a, aug(x, epoch=3, batch_index=6))
    assert not np.array_equal(a, Augmenter(crop_padding=2, hflip=True, seed=5)(x, epoch=3, batch_index=5))
    assert aug.config() == {"crop_padding": 2, "hflip": True, "seed": 4}
