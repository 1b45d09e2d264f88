"""CIFAR-10: generated binary and python folders load exactly; malicious pickles never run; fuzzing."""
import os
import pickle
import struct
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convnet.data import load, load_cifar10, parse_cifar_binary, restricted_loads
from convnet.data.cifar import CIFAR10_CLASSES, parse_cifar_python
from convnet.errors import DataFormatError, SecurityError
from fuzzing import mutate, mutation




def batch(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist()


def nhwc(flat):
    """The expected image: planar R, G, B planes of 32x32 -> (N, 32, 32, 3), by explicit indexing."""
    out = np.empty((len(flat), 32, 32, 3), np.uint8)
    for c in range(3):
        out[..., c] = flat[:, c * 1024:(c + 1) * 1024].reshape(-1, 32, 32)
    return out


def binary_bytes(flat, labels):
    return b"".join(bytes([lab]) + row.tobytes() for row, lab in zip(flat, labels))


def py2_pickle(flat, labels):
    """The bytes Python 2's cPickle (protocol 2) wrote for a CIFAR-10 batch: str as BINSTRING, numpy.core names."""
    def s(b):  # SHORT_BINSTRING / BINSTRING
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    out = bytearray(b"\x80\x02}(")  # PROTO 2, EMPTY_DICT, MARK
    out += s(b"batch_label") + s(b"training batch 1 of 5")
    out += s(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    out += s(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
    out += b"(K\x01K" + bytes([len(flat)]) + b"M\x00\x0c\x86"               # version 1, shape (n, 3072)
    out += b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R"                # dtype('u1', 0, 1)
    out += b"(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # dtype state, BUILD
    out += b"\x89" + s(flat.tobytes()) + b"tb"                              # fortran=False, raw bytes; BUILD
    out += s(b"filenames") + b"](" + b"".join(s(f"img{i}.png".encode()) for i in range(len(flat))) + b"e"
    out += b"u."
    return bytes(out)


def write_binary(folder, parts):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (flat, labels) in parts.items():
        (folder / f"{name}.bin").write_bytes(binary_bytes(flat, labels))
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n\n")


def write_python(folder, parts, *, protocol=2):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (flat, labels) in parts.items():
        if protocol == "py2":
            data = py2_pickle(flat, labels)
        else:
            data = pickle.dumps({b"batch_label": name.encode(), b"labels": labels, b"data": flat,
                                 b"filenames": [b"x.png"] * len(labels)}, protocol=protocol)
        (folder / name).write_bytes(data)
    names = [c.upper().encode() for c in CIFAR10_CLASSES]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names, b"num_vis": 3072}, protocol=2))


PARTS = {"data_batch_1": batch(3, 1), "data_batch_2": batch(2, 2), "test_batch": batch(4, 3)}


def check(train, test):
    flat = np.concatenate([PARTS["data_batch_1"][0], PARTS["data_batch_2"][0]])
    labels = PARTS["data_batch_1"][1] + PARTS["data_batch_2"][1]
    assert train.x.shape == (5, 32, 32, 3) and train.x.dtype == np.float32
    np.testing.assert_array_equal(train.x, nhwc(flat).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(train.y, labels)
    np.testing.assert_array_equal(test.x, nhwc(PARTS["test_batch"][0]).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(test.y, PARTS["test_batch"][1])
    assert train.y.dtype == np.int64


def test_binary_folder_loads_exactly(tmp_path):
    write_binary(tmp_path / "cifar-10-batches-bin", PARTS)
    train, test = load_cifar10(tmp_path)  # the parent folder works too
    check(train, test)
    assert train.classes == CIFAR10_CLASSES


@pytest.mark.parametrize("protocol", ["py2", 0, 1, 2, 3, 4, 5])
def test_python_folder_loads_exactly(tmp_path, protocol):
    write_python(tmp_path, PARTS, protocol=protocol)
    train, test = load(f"cifar10:{tmp_path}")
    check(train, test)
    assert train.classes == tuple(c.upper() for c in CIFAR10_CLASSES)


def test_handmade_python2_pickle_matches_real_unpickling():
    flat, labels = batch(2, 9)
    data = py2_pickle(flat, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = pickle.loads(data, encoding="bytes")  # trusted: we wrote it
    ours = restricted_loads(data)
    assert ours.keys() == real.keys()
    np.testing.assert_array_equal(ours[b"data"], real[b"data"])
    assert ours[b"labels"] == real[b"labels"] == labels


# ---- malformed files -------------------------------------------------------------------------------

def test_binary_malformed(tmp_path):
    flat, labels = batch(2, 0)
    good = binary_bytes(flat, labels)
    with pytest.raises(DataFormatError, match="not a positive multiple of the 3073-byte"):
        parse_cifar_binary(good[:-1])
    with pytest.raises(DataFormatError, match="not a positive multiple"):
        parse_cifar_binary(b"")
    with pytest.raises(DataFormatError, match="record 1 has label 12"):
        parse_cifar_binary(good[:3073] + b"\x0c" + good[3074:])
    write_binary(tmp_path, {"test_batch": batch(1, 0)})
    with pytest.raises(DataFormatError, match="no data_batch_1.bin"):
        load_cifar10(tmp_path)
    (tmp_path / "data_batch_1.bin").write_bytes(good + b"\x00")
    with pytest.raises(DataFormatError, match="data_batch_1.bin: 6147 bytes"):
        load_cifar10(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="neither test_batch.bin"):
        load_cifar10(tmp_path / "empty")


@pytest.mark.parametrize("obj,problem", [
    ([1, 2], "expected a pickled dict"),
    ({b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]}, r"shape \(N, 3072\)"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "uint8 array"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "2 images but 'labels' has 1"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "record 1 has label 10"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": "ab"}, "list of integers"),
])
def test_python_malformed(obj, problem):
    with pytest.raises(DataFormatError, match=problem):
        parse_cifar_python(pickle.dumps(obj, protocol=2))


def test_truncated_pickle_is_a_format_error():
    data = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}, protocol=2)
    for cut in (1, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(DataFormatError, match="not a valid pickle"):
            restricted_loads(data[:cut])


# ---- malicious pickles -----------------------------------------------------------------------------

class SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvalCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


def stack_global(marker):
    """Hand-written protocol-4 pickle: STACK_GLOBAL 'os' 'system', then REDUCE."""
    cmd = f"touch {marker}".encode()
    return (b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c" + bytes([len(cmd)]) + cmd + b"\x85R.")


def inst_opcode(marker):
    """Protocol 0: INST os system (calls it at once)."""
    return b"(S'touch " + str(marker).encode() + b"'\nios\nsystem\n."


def reconstruct_abuse(marker):
    """An allowed name used with a forbidden argument: _reconstruct(builtins.eval, ...)."""
    return b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncbuiltins\neval\nK\x00\x85U\x01b\x87R."


def object_array(marker):
    return pickle.dumps({b"data": np.array([SystemCall(marker)], dtype=object), b"labels": [0]}, protocol=2)


def persistent_id(marker):
    return b"\x80\x02U\x03abcQ."


PAYLOADS = {
    "reduce-os-system-p0": lambda m: pickle.dumps({b"data": SystemCall(m), b"labels": [0]}, protocol=0),
    "reduce-os-system-p2": lambda m: pickle.dumps({b"data": SystemCall(m), b"labels": [0]}, protocol=2),
    "reduce-os-system-p4": lambda m: pickle.dumps({b"data": SystemCall(m), b"labels": [0]}, protocol=4),
    "builtins-eval": lambda m: pickle.dumps({b"data": EvalCall(m), b"labels": [0]}, protocol=2),
    "builtins-eval-p5": lambda m: pickle.dumps({b"data": EvalCall(m), b"labels": [0]}, protocol=5),
    "stack-global": stack_global,
    "inst-opcode": inst_opcode,
    "reconstruct-abuse": reconstruct_abuse,
    "object-array": object_array,
    "persistent-id": persistent_id,
}


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_malicious_pickle_raises_security_error_and_runs_nothing(tmp_path, name):
    marker = tmp_path / "marker"
    folder = tmp_path / "cifar"
    write_python(folder, {"data_batch_1": batch(1, 0), "test_batch": batch(1, 1)})
    (folder / "data_batch_1").write_bytes(PAYLOADS[name](marker))
    with pytest.raises(SecurityError) as info:
        load_cifar10(folder)
    assert "data_batch_1" in str(info.value)
    assert not marker.exists()


# ---- fuzzing ---------------------------------------------------------------------------------------

BIN_SEED = binary_bytes(*batch(2, 5))


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=4))
def test_fuzz_cifar_binary_raises_only_data_format_error(ops):
    data = mutate(BIN_SEED, ops)
    try:
        x, y = parse_cifar_binary(data)
    except DataFormatError:
        return
    assert len(data) == 3073 * len(x) and y.max() < 10


PY_SEED = pickle.dumps({b"batch_label": b"b", b"labels": [3], b"data": batch(1, 6)[0][:, :] * 0,
                        b"filenames": [b"a"]}, protocol=2)
PY2_SEED = py2_pickle(np.zeros((1, 3072), np.uint8), [7])


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=4), st.booleans())
def test_fuzz_cifar_python_raises_only_format_or_security_errors(ops, py2):
    data = mutate(PY2_SEED if py2 else PY_SEED, ops)
    try:
        parse_cifar_python(data)
    except (DataFormatError, SecurityError):
        pass
