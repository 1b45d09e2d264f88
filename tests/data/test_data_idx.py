"""MNIST IDX files: a generated folder loads exactly; each malformed file raises DataFormatError; fuzzing."""
import gzip
import io
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convnet.data import load, load_mnist, read_idx, read_idx_stream
from convnet.errors import DataFormatError
from fuzzing import mutate, mutation


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(dt).tobytes()


def write_mnist(folder, *, gz=False, n_train=6, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    data = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        data[stem] = (images, labels)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            raw = idx_bytes(arr)
            name = f"{stem}-{kind}-ubyte"
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return data


@pytest.mark.parametrize("gz", [False, True])
def test_generated_mnist_folder_loads_exactly(tmp_path, gz):
    data = write_mnist(tmp_path, gz=gz)
    train, test = load_mnist(tmp_path)
    for ds, (images, labels) in ((train, data["train"]), (test, data["t10k"])):
        assert ds.x.shape == (len(images), 28, 28, 1) and ds.x.dtype == np.float32
        np.testing.assert_array_equal(ds.x[..., 0], images.astype(np.float32) / np.float32(255))
        np.testing.assert_array_equal(ds.y, labels.astype(np.int64))
        assert ds.y.dtype == np.int64 and ds.classes == tuple("0123456789")
    train2, _ = load(f"mnist:{tmp_path}")
    np.testing.assert_array_equal(train2.x, train.x)


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_every_idx_element_type(code):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype({0x08: np.uint8}.get(code, np.float64))
    if code == 0x08:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(arr, code)
    got = read_idx_stream(io.BytesIO(data), source="t", available=len(data))
    assert got.dtype.isnative and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, arr.astype(got.dtype))


GOOD = idx_bytes(np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3))

MALFORMED = {
    "magic number 0100": b"\x01" + GOOD[1:],
    "unknown IDX element type 0x07": GOOD[:2] + b"\x07" + GOOD[3:],
    "says 0 dimensions": GOOD[:3] + b"\x00" + GOOD[4:],
    "says 9 dimensions": GOOD[:3] + b"\x09" + GOOD[4:],
    "while reading the 4-byte IDX magic": GOOD[:3],
    "while reading the 3 IDX dimensions": GOOD[:9],
    "only 17 bytes follow": GOOD[:-1],
    "1 trailing bytes": GOOD + b"\x00",
    "only 18 bytes follow": GOOD[:4] + struct.pack(">I", 3) + GOOD[8:],
}


@pytest.mark.parametrize("problem", list(MALFORMED))
def test_malformed_idx_files(tmp_path, problem):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(MALFORMED[problem])
    with pytest.raises(DataFormatError, match=problem) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_gzip_problems(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(GOOD)[:-6])  # cut inside the trailer
    with pytest.raises(DataFormatError, match=str(path)):
        read_idx(path)
    path.write_bytes(gzip.compress(GOOD + b"extra"))
    with pytest.raises(DataFormatError, match="more data follows"):
        read_idx(path)
    path.write_bytes(gzip.compress(GOOD[:-3]))
    with pytest.raises(DataFormatError, match="file ended while reading the IDX data"):
        read_idx(path)
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 30)
    with pytest.raises(DataFormatError, match="gzip"):
        read_idx(path)


def test_cap_and_counts(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(GOOD)
    with pytest.raises(DataFormatError, match="above the cap of 10 bytes"):
        read_idx(path, max_bytes=10)
    write_mnist(tmp_path)
    labels = np.zeros(5, np.uint8)  # 6 images, 5 labels
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    with pytest.raises(DataFormatError, match="has 6 images but train-labels-idx1-ubyte has 5 labels"):
        load_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros((6, 2), np.uint8)))
    with pytest.raises(DataFormatError, match="expected uint8 labels with 1 dimension"):
        load_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataFormatError, match="no train labels file"):
        load_mnist(tmp_path)
    with pytest.raises(DataFormatError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")


@pytest.mark.parametrize("gz", [False, True])
def test_huge_claim_fails_fast_with_little_memory(tmp_path, gz):
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2 ** 31, 28, 28)
    raw = header + b"\x00" * (100 - len(header))
    assert len(raw) == 100
    path = tmp_path / "claims-idx3-ubyte"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match=f"need {2 ** 31 * 28 * 28} bytes"):
            read_idx(path, max_bytes=2 ** 62)  # even without the cap, the file size refuses it
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2 ** 20


# ---- fuzzing: mutations of a valid seed file raise only DataFormatError ----------------------------

SEED = idx_bytes(np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4))



@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=4))
def test_fuzz_idx_raises_only_data_format_error(ops):
    data = mutate(SEED, ops)
    try:
        arr = read_idx_stream(io.BytesIO(data), source="fuzz", available=len(data), max_bytes=2 ** 20)
    except DataFormatError:
        return
    assert arr.size * arr.itemsize + 4 + 4 * arr.ndim == len(data)


@pytest.fixture(scope="module")
def gz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gzfuzz")


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=3), st.booleans())
def test_fuzz_gzip_idx_raises_only_data_format_error(gz_dir, ops, mutate_compressed):
    data = mutate(gzip.compress(SEED), ops) if mutate_compressed else gzip.compress(mutate(SEED, ops))
    path = gz_dir / "fuzz-idx3-ubyte.gz"
    path.write_bytes(data)
    try:
        read_idx(path, max_bytes=2 ** 20)
    except DataFormatError:
        pass
