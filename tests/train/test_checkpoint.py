"""Checkpoints: bitwise round trip, safetensors interop, one malformed file per validation rule, metadata."""
import json
import os
import struct

import numpy as np
import pytest

from convnet.errors import CheckpointError, ConfigError, DataFormatError
from convnet.train import (
    check_config, checkpoint_path, config_hash, latest_checkpoint, load_checkpoint, read_safetensors,
    remove_stale_temporaries, save_checkpoint,
)
from convnet.train.safetensors_io import MAX_HEADER_BYTES


def _tensors():
    rng = np.random.default_rng(0)
    nan_payload = np.array([np.nan, -0.0, np.inf], dtype=np.float32)
    nan_payload.view(np.uint32)[0] = 0x7FC01234  # a NaN with a payload: bitwise equality must keep it
    return {
        "conv1_1.w": rng.standard_normal((3, 3, 1, 8)).astype(np.float32),
        "conv1_1.b": rng.standard_normal(8),
        "fc.w": np.asfortranarray(rng.standard_normal((5, 7)).astype(np.float16)),
        "step": np.array(12345, dtype=np.int64),
        "mask": rng.random((4, 4)) > 0.5,
        "labels": rng.integers(0, 255, 9).astype(np.uint8),
        "empty": np.zeros((0, 3), np.float32),
        "big_endian": np.arange(6, dtype=">i4").reshape(2, 3),
        "odd": np.arange(3, dtype=np.int8),
        "nan": nan_payload,
        "u16": np.arange(5, dtype=np.uint16), "i16": -np.arange(5, dtype=np.int16),
        "u32": np.arange(5, dtype=np.uint32), "u64": np.arange(5, dtype=np.uint64), "i32": np.arange(5, dtype=np.int32),
    }


def _bitwise_equal(a, b):
    return (a.shape == b.shape and a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=")
            and np.array_equal(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("=")).view(np.uint8),
                               np.ascontiguousarray(b).view(np.uint8)))


def test_round_trip_is_bitwise_equal(tmp_path):
    tensors = _tensors()
    rng_state = np.random.default_rng(5).bit_generator.state
    meta = {"arch": {"zoo": "vgg", "args": {"variant": "D"}}, "step": np.int64(7), "epoch": 1,
            "rng": rng_state, "data": {"epoch": 1, "cursor": 64}, "lr": np.float32(0.5)}
    path = save_checkpoint(tmp_path / "ckpt-00000007.safetensors", tensors, meta)
    got, got_meta = load_checkpoint(path)
    assert sorted(got) == sorted(tensors)
    for k in tensors:
        assert _bitwise_equal(tensors[k], got[k]), k
        assert got[k].flags.writeable and got[k].dtype.isnative
    assert got_meta["step"] == 7 and got_meta["arch"]["args"]["variant"] == "D"
    g = np.random.default_rng()
    g.bit_generator.state = got_meta["rng"]
    assert np.array_equal(g.random(5), np.random.default_rng(5).random(5))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporaries left behind
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not mkstemp's 0600


def test_interop_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    tensors = {k: v for k, v in _tensors().items() if k != "big_endian"}
    save_checkpoint(tmp_path / "ours.safetensors", tensors, {"a": 1})
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    for k in tensors:
        assert _bitwise_equal(tensors[k], theirs[k]), k
    st.save_file({k: np.asarray(v, order="C") for k, v in tensors.items()}, str(tmp_path / "theirs.safetensors"),
                 metadata={"x": "y"})
    got, metadata = read_safetensors(tmp_path / "theirs.safetensors")
    assert metadata == {"x": "y"}
    for k in tensors:
        assert _bitwise_equal(tensors[k], got[k]), k


# ---- one malformed file per rule -----------------------------------------------------------------

def _file(tmp_path, header, buffer=b"", *, length=None, raw_header=None):
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    n = len(text) if length is None else length
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", n) + text + buffer)
    return path


def _raw(tmp_path, data):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    return path


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}

MALFORMED = {
    "shorter than the 8-byte": lambda t: _raw(t, b"\x01\x02"),
    "outside the accepted range": lambda t: _file(t, {}, length=1),
    "outside the accepted range ": lambda t: _file(t, {}, length=MAX_HEADER_BYTES + 1),
    "runs past the end": lambda t: _file(t, {"a": F32_2}, b"\0" * 8, length=10_000),
    "does not start with": lambda t: _file(t, None, raw_header=b'["a", 1]'),
    "not valid UTF-8 JSON": lambda t: _file(t, None, raw_header=b'{"a": \xff}'),
    "not valid UTF-8 JSON ": lambda t: _file(t, None, raw_header=b'{"a": {"dtype": "F32"'),
    "twice": lambda t: _file(t, None, b"\0" * 16, raw_header=(
        b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        b'"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}')),
    "exactly the fields": lambda t: _file(t, {"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8),
    "exactly the fields ": lambda t: _file(t, {"a": {**F32_2, "extra": 1}}, b"\0" * 8),
    "unknown dtype": lambda t: _file(t, {"a": {**F32_2, "dtype": "F31"}}, b"\0" * 8),
    "numpy cannot represent": lambda t: _file(t, {"a": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}},
                                              b"\0" * 8),
    "non-negative integers": lambda t: _file(t, {"a": {**F32_2, "shape": [-2]}}, b"\0" * 8),
    "non-negative integers ": lambda t: _file(t, {"a": {**F32_2, "shape": [2.0]}}, b"\0" * 8),
    "0 <= begin <= end": lambda t: _file(t, {"a": {**F32_2, "data_offsets": [8, 0]}}, b"\0" * 8),
    "needs 8 bytes": lambda t: _file(t, {"a": {**F32_2, "data_offsets": [0, 12]}}, b"\0" * 12),
    "needs 4000000000000 bytes": lambda t: _file(
        t, {"a": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 8]}}, b"\0" * 8),
    "overlaps": lambda t: _file(t, {"a": F32_2, "b": {**F32_2, "data_offsets": [4, 12]}}, b"\0" * 12),
    "gap of 4 bytes": lambda t: _file(t, {"a": F32_2, "b": {**F32_2, "data_offsets": [12, 20]}}, b"\0" * 20),
    "gap of 8 bytes": lambda t: _file(t, {"a": {**F32_2, "data_offsets": [8, 16]}}, b"\0" * 16),
    "truncated": lambda t: _file(t, {"a": F32_2, "b": {**F32_2, "data_offsets": [8, 16]}}, b"\0" * 12),
    "trailing bytes": lambda t: _file(t, {"a": F32_2}, b"\0" * 9),
    "'__metadata__' must map": lambda t: _file(t, {"__metadata__": {"k": 1}, "a": F32_2}, b"\0" * 8),
}


@pytest.mark.parametrize("rule", list(MALFORMED))
def test_each_malformed_file_raises_its_own_error(rule, tmp_path):
    path = MALFORMED[rule](tmp_path)
    with pytest.raises(DataFormatError, match=rule.strip().replace("(", r"\(")) as info:
        read_safetensors(path)
    assert str(path) in str(info.value)
    with pytest.raises(CheckpointError, match="corrupt") as info:
        load_checkpoint(path)
    assert isinstance(info.value.__cause__, DataFormatError)


def test_a_foreign_safetensors_file_is_not_a_checkpoint(tmp_path):
    path = _file(tmp_path, {"a": F32_2}, b"\0" * 8)
    assert read_safetensors(path)[0]["a"].tolist() == [0.0, 0.0]
    with pytest.raises(CheckpointError, match="not a convnet checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_unserialisable_inputs_are_refused_and_leave_nothing(tmp_path):
    good = save_checkpoint(tmp_path / "c.safetensors", {"a": np.ones(2)}, {"step": 1})
    with pytest.raises(ConfigError, match="meta"):
        save_checkpoint(good, {"a": np.zeros(2)}, {"loss": float("nan")})
    with pytest.raises(ConfigError, match="dtype"):
        save_checkpoint(good, {"a": np.zeros(2), "b": np.array(["text"])}, {})
    with pytest.raises(ConfigError, match="names"):
        save_checkpoint(good, {"__metadata__": np.zeros(2)}, {})
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]
    tensors, meta = load_checkpoint(good)
    assert tensors["a"].tolist() == [1.0, 1.0] and meta == {"step": 1}


def test_config_hash_and_check_config():
    a = {"lr": 0.1, "arch": {"zoo": "lenet", "args": [1, 2]}, "batch": 32}
    b = {"batch": 32, "arch": {"args": (1, 2), "zoo": "lenet"}, "lr": 0.1}
    assert config_hash(a) == config_hash(b) and len(config_hash(a)) == 64
    assert config_hash({**a, "lr": 0.2}) != config_hash(a)
    check_config({"config_hash": config_hash(a)}, b)
    with pytest.raises(CheckpointError, match=r"lr: 0.1 -> 0.2"):
        check_config({"config_hash": config_hash(a), "config": a}, {**a, "lr": 0.2}, path="x.safetensors")
    with pytest.raises(CheckpointError, match="no 'config_hash'"):
        check_config({}, a)
    with pytest.raises(ConfigError):
        config_hash({"x": object()})


def test_latest_checkpoint_ignores_temporaries(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for step in (3, 12, 7):
        save_checkpoint(checkpoint_path(tmp_path, step), {"s": np.array(step)})
    (tmp_path / ".ckpt-00000099.safetensors.abc.tmp").write_bytes(b"partial")
    (tmp_path / "other-00000500.safetensors").write_bytes(b"x")
    assert latest_checkpoint(tmp_path).name == "ckpt-00000012.safetensors"
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".ckpt-00000099.safetensors.abc.tmp"]


# ---- fuzzing: a mutated checkpoint either loads or raises DataFormatError --------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stfuzz")
    path = save_checkpoint(folder / "seed.safetensors",
                           {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array(3), "c": np.ones(5, np.uint8)},
                           {"step": 1})
    return path, path.read_bytes()


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2 ** 16), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(-40, 40))
def test_fuzz_safetensors_raises_only_data_format_error(seed_file, flips, resize):
    path, seed = seed_file
    data = bytearray(seed)
    for pos, value in flips:
        data[pos % len(data)] = value
    data = data[:len(data) + resize] if resize < 0 else data + bytes(resize)
    target = path.with_name("mutant.safetensors")
    target.write_bytes(bytes(data))
    try:
        read_safetensors(target)
    except DataFormatError:
        pass
