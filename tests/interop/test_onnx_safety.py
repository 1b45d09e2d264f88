"""Issue 16, item 6 (reliability items 6-8): reading an ONNX file never runs code, never allocates
what the file cannot back, keeps external data inside the model's folder, and turns every
malformed file into a DataFormatError naming the file.

* external data: a location that is absolute, has ``..``, or passes through a symbolic link is a
  SecurityError (onnx issues 3991, 7040, 7686); sizes and offsets are checked against the file;
* size claims: a tensor's ``dims × itemsize`` against the bytes present and the cap, before
  allocating (a 200-byte model claiming 2^40 floats fails fast in under 10 MB);
* malformed files — missing, empty, garbage, truncated, another protobuf, an undefined input
  (a missing initializer), a cycle, a node that breaks its op's schema — are DataFormatErrors;
* a seeded mutation fuzz (byte sets, truncations, insertions, deletions) over real models: every
  outcome is a net or a convnet error naming the file, nothing else.
"""
from __future__ import annotations

import os
import random
import time
import tracemalloc

import numpy as np
import pytest

from oracle import require_module  # noqa: E402

onnx = require_module("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from convnet.errors import ConfigError, ConvNetError, DataFormatError, SecurityError  # noqa: E402
from convnet.interop.onnx import convert, load  # noqa: E402
from fuzzing import mutate  # noqa: E402
from onnx_models import light_path  # noqa: E402

F = TensorProto.FLOAT


def small_model(w=None, *, opset=13):
    """x (1, 2, 5, 5) -> Conv 3×3 (weights ``w``, an initializer) -> Relu -> Flatten -> Gemm."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), "w") if w is None else w
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1)]
    inits = [w, numpy_helper.from_array(np.zeros(3, np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((4, 75)).astype(np.float32), "fc_w"),
             numpy_helper.from_array(np.ones(4, np.float32), "fc_b")]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", F, [1, 2, 5, 5])],
                              [helper.make_tensor_value_info("y", F, [1, 4])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def external_weights(tmp_path, location, *, offset=0, length=None, write=True, data=None):
    """``small_model`` with its conv weights stored in the external file ``location`` (relative to
    ``tmp_path``, the model's folder); returns the model's path."""
    w = np.random.default_rng(0).standard_normal((3, 2, 3, 3)).astype(np.float32)
    t = TensorProto(name="w", data_type=F, dims=w.shape, data_location=TensorProto.EXTERNAL)
    raw = w.tobytes() if data is None else data
    for key, value in (("location", location), ("offset", str(offset)),
                       ("length", str(len(w.tobytes()) if length is None else length))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    if write:
        target = tmp_path / location
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\0" * offset + raw)
    path = tmp_path / "model.onnx"
    path.write_bytes(small_model(t).SerializeToString())
    return path


# -- external data ---------------------------------------------------------------------------------------
def test_external_data_inside_the_folder_loads(tmp_path):
    inline = convert(small_model())
    for location, offset in (("weights.bin", 0), ("data/w.bin", 16)):
        path = external_weights(tmp_path, location, offset=offset)
        net = load(path)
        np.testing.assert_array_equal(net["conv"].params["w"], inline.net["conv"].params["w"])


@pytest.mark.parametrize("location, why", [
    ("/etc/passwd", "absolute"),
    ("../outside.bin", "'..'"),
    ("data/../../outside.bin", "'..'"),
    ("C:\\weights.bin", "absolute"),
])
def test_external_data_outside_the_folder_is_refused(tmp_path, location, why):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"\0" * 72)
    path = external_weights(folder, location, write=False)
    with pytest.raises(SecurityError) as info:
        load(path)
    assert str(path) in str(info.value) and why in str(info.value) and repr(location) in str(info.value)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_external_data_through_a_symbolic_link_is_refused(tmp_path):
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "w.bin").write_bytes(np.ones(18, np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    os.symlink(outside / "w.bin", folder / "link.bin")  # a file link
    os.symlink(outside, folder / "sub")  # a folder link
    (folder / "inside.bin").write_bytes(np.ones(18, np.float32).tobytes())
    os.symlink(folder / "inside.bin", folder / "alias.bin")  # even a link that stays inside
    for location in ("link.bin", "sub/w.bin", "alias.bin"):
        path = external_weights(folder, location, write=False)
        with pytest.raises(SecurityError, match="symbolic link"):
            load(path)


def test_external_data_read_from_bytes_has_no_folder(tmp_path):
    path = external_weights(tmp_path, "weights.bin")
    with pytest.raises(SecurityError, match="no folder"):
        convert(path.read_bytes())


@pytest.mark.parametrize("kwargs, message", [
    (dict(length=71), "length 71"),
    (dict(write=False), "does not exist"),
    (dict(data=b"\0" * 40), "has 40 bytes"),
    (dict(offset=-4, write=False), "negative"),
])
def test_external_data_sizes_are_checked(tmp_path, kwargs, message):
    path = external_weights(tmp_path, "weights.bin", **kwargs)
    with pytest.raises(DataFormatError, match=message) as info:
        load(path)
    assert str(path) in str(info.value)


# -- size claims ------------------------------------------------------------------------------------------
def test_a_tensor_claiming_more_than_it_holds_fails_before_allocating(tmp_path):
    t = TensorProto(name="w", data_type=F, dims=[2**20, 2**20], raw_data=b"\0" * 64)
    path = tmp_path / "huge.onnx"
    path.write_bytes(small_model(t).SerializeToString())
    assert path.stat().st_size < 2000
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(DataFormatError, match="over the cap") as info:
        load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert str(path) in str(info.value)
    assert peak < 10 * 2**20 and time.perf_counter() - start < 2


@pytest.mark.parametrize("tensor, message", [
    (TensorProto(name="w", data_type=F, dims=[3, 2, 3, 3], raw_data=b"\0" * 70), "holds 70 bytes"),
    (TensorProto(name="w", data_type=F, dims=[3, 2, 3, 3], float_data=[1.0] * 5), "holds 5"),
    (TensorProto(name="w", data_type=F, dims=[3, -2, 3, 3]), "negative"),
    (TensorProto(name="w", data_type=0, dims=[1]), "element type"),
])
def test_tensor_sizes_are_checked(tensor, message):
    with pytest.raises(DataFormatError, match=message):
        convert(small_model(tensor))


def test_a_folded_constant_over_the_cap_fails_before_allocating():
    model = small_model()
    g = model.graph
    g.initializer[0].CopyFrom(numpy_helper.from_array(np.array([2**40], np.int64), "shape"))
    g.node.insert(0, helper.make_node("ConstantOfShape", ["shape"], ["w"], name="big"))
    with pytest.raises(DataFormatError, match="'big'.*over the cap"):
        convert(model)
    with pytest.raises(DataFormatError, match="over the cap of 1000 bytes"):
        convert(small_model(), max_bytes=1000)


# -- malformed files -------------------------------------------------------------------------------------
def _write(tmp_path, data: bytes, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _malformed(path, *parts):
    with pytest.raises(DataFormatError) as info:
        load(path)
    assert str(path) in str(info.value)
    for part in parts:
        assert part in str(info.value), (part, str(info.value))


def test_missing_empty_garbage_truncated_and_other_protobufs(tmp_path):
    _malformed(tmp_path / "missing.onnx", "does not exist")
    _malformed(_write(tmp_path, b""), "no graph")
    _malformed(_write(tmp_path, os.urandom(4096)))
    seed = open(light_path("squeezenet"), "rb").read()
    for cut in (7, 100, len(seed) // 2, len(seed) - 3):
        _malformed(_write(tmp_path, seed[:cut]))
    tensor = numpy_helper.from_array(np.ones((4, 4), np.float32), "t")
    _malformed(_write(tmp_path, tensor.SerializeToString()))


def _edited(tmp_path, edit):
    model = small_model()
    edit(model.graph)
    return _write(tmp_path, model.SerializeToString())


def test_graph_structure_is_checked(tmp_path):
    _malformed(_edited(tmp_path, lambda g: g.initializer.pop(1)), "'b'", "missing initializer")
    _malformed(_edited(tmp_path, lambda g: g.node[0].input.__setitem__(0, "f")), "cycle")
    _malformed(_edited(tmp_path, lambda g: g.node[1].output.__setitem__(0, "c")), "produced twice")
    _malformed(_edited(tmp_path, lambda g: g.output[0].__setattr__("name", "nowhere")), "'nowhere'")
    _malformed(_edited(tmp_path, lambda g: g.node[1].input.append("b")), "'relu'", "inputs")
    _malformed(_edited(tmp_path, lambda g: g.node[0].attribute.append(helper.make_attribute("group", 1.5))),
               "`group`", "type")
    _malformed(_edited(tmp_path, lambda g: g.node[0].attribute.append(helper.make_attribute("colour", 1))),
               "`colour`")
    model = small_model()
    del model.opset_import[:]
    _malformed(_write(tmp_path, model.SerializeToString()), "opset")


def test_a_name_that_is_not_text(tmp_path):
    data = small_model().SerializeToString().replace(b"relu", b"r\xffl\xfe")
    _malformed(_write(tmp_path, data), "UTF-8")


def test_without_onnx_the_package_imports_and_says_how_to_install_it():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['onnx'] = None\n"  # "import onnx" now raises ImportError
        "import convnet, convnet.models, convnet.interop.onnx as o, convnet.interop.onnx.backend as b\n"
        "from convnet.errors import ConfigError\n"
        "for call in (lambda: o.load('m.onnx'), lambda: b.ConvnetBackend.prepare(None)):\n"
        "    try: call()\n"
        "    except ConfigError as e: print('pip install convnet[onnx]' in str(e))\n"
    )
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "True"]


# -- mutation fuzz -----------------------------------------------------------------------------------------
FUZZ_SEEDS = ("squeezenet", "inception_v1", "shufflenet", "inception_v2")
FUZZ_MUTATIONS = 700  # about 3 s


def _mutations(rng: random.Random):
    ops = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(("set", "set", "set", "truncate", "insert", "delete", "append"))
        pos = rng.randrange(2**16)
        arg = (rng.randrange(256) if kind == "set" else rng.randbytes(rng.randint(1, 6))
               if kind in ("insert", "append") else rng.randint(1, 6))
        ops.append((kind, pos, arg))
    return ops


def test_mutated_models_load_or_raise_a_convnet_error_naming_the_file(tmp_path):
    """A seeded loop of byte mutations of real models (and of a small one with external data): each
    load gives a net or a DataFormatError/ConfigError/SecurityError (or another ConvNetError) that
    names the file — never another exception, never a hang (max_bytes keeps folded weights small)."""
    seeds = {name: open(light_path(name), "rb").read() for name in FUZZ_SEEDS}
    seeds["external"] = external_weights(tmp_path, "weights.bin").read_bytes()
    rng = random.Random(20260516)
    outcomes = {}
    start = time.perf_counter()
    for i in range(FUZZ_MUTATIONS):
        name = rng.choice(sorted(seeds))
        data = mutate(seeds[name], _mutations(rng))
        path = _write(tmp_path, data, f"fuzz_{name}.onnx")
        t0 = time.perf_counter()
        try:
            load(path, max_bytes=32 * 2**20)
            kind = "net"
        except ConvNetError as exc:
            kind = type(exc).__name__
            assert str(path) in str(exc), (name, str(exc))
        outcomes[kind] = outcomes.get(kind, 0) + 1
        assert time.perf_counter() - t0 < 5, name
    assert time.perf_counter() - start < 30
    assert outcomes.get("DataFormatError", 0) > FUZZ_MUTATIONS // 2 and outcomes.get("net", 0) > 0, outcomes
    assert set(outcomes) <= {"net", "DataFormatError", "ConfigError", "SecurityError"}, outcomes


def test_every_truncation_of_a_small_model(tmp_path):
    data = small_model().SerializeToString()
    for cut in range(0, len(data), 7):
        path = _write(tmp_path, data[:cut])
        with pytest.raises((DataFormatError, ConfigError)) as info:
            load(path)
        assert str(path) in str(info.value)
