"""ONNX models for the import tests: the onnx wheel's light models with seeded random weights,
and small graphs written with ``onnx.helper``.

The light models (``onnx/backend/test/data/light``) are real exported graphs (Caffe2's
AlexNet, ZFNet, VGG19, GoogLeNet, ResNet-50, SqueezeNet...) whose weights were replaced by
``ConstantOfShape`` nodes of one value.  :func:`randomized` puts seeded random weights back,
scaled by the role each tensor plays (He for convolution and FC weights, so activations stay
finite through ReLUs; BN statistics near the identity), as initializers.
"""
from __future__ import annotations

import os

import numpy as np

from oracle import require_module

onnx = require_module("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def light_path(name: str) -> str:
    return os.path.join(LIGHT, f"light_{name}.onnx")


def _roles(graph) -> dict[str, tuple[str, int, object]]:
    """value name -> (op, input index, node) of its first reader that gives it a weight role."""
    roles = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name and name not in roles and (node.op_type, i) in _SCALE:
                roles[name] = (node.op_type, i, node)
    return roles


def _normal(rng, shape, scale):
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)


def _he(rng, shape, fan_in):
    return _normal(rng, shape, np.sqrt(2.0 / max(fan_in, 1)))


def _gemm_w(rng, shape, node):
    trans_b = any(a.name == "transB" and a.i for a in node.attribute)
    return _he(rng, shape, shape[1] if trans_b else shape[0])


#: (op, input index) -> how to draw that tensor
_SCALE = {
    ("Conv", 1): lambda rng, s, node: _he(rng, s, int(np.prod(s[1:]))),
    ("Conv", 2): lambda rng, s, node: _normal(rng, s, 0.1),
    ("Gemm", 1): _gemm_w,
    ("Gemm", 2): lambda rng, s, node: _normal(rng, s, 0.1),
    ("MatMul", 1): lambda rng, s, node: _he(rng, s, s[0]),
    ("BatchNormalization", 1): lambda rng, s, node: rng.uniform(0.5, 1.5, s).astype(np.float32),
    ("BatchNormalization", 2): lambda rng, s, node: _normal(rng, s, 0.1),
    ("BatchNormalization", 3): lambda rng, s, node: _normal(rng, s, 0.1),
    ("BatchNormalization", 4): lambda rng, s, node: rng.uniform(0.5, 1.5, s).astype(np.float32),
    ("Mul", 1): lambda rng, s, node: rng.uniform(0.5, 1.5, s).astype(np.float32),
    ("Add", 1): lambda rng, s, node: _normal(rng, s, 0.1),
    ("Unsqueeze", 0): None,  # decided by what reads the Unsqueeze (below)
}


def randomized(name: str, seed: int = 0):
    """The light model ``name`` with every weight (a ConstantOfShape of a constant shape, or a float
    initializer with a weight role) replaced by a seeded random initializer of the same shape."""
    model = onnx.load(light_path(name))
    g = model.graph
    rng = np.random.default_rng(seed)
    inits = {t.name: t for t in g.initializer}
    roles = _roles(g)
    # an Unsqueeze of a per-channel vector feeding Mul/Add (BN written as Mul/Add): the vector's role
    for node in g.node:
        if node.op_type == "Unsqueeze" and node.output[0] in {n.input[1] for n in g.node if n.op_type in ("Mul", "Add")
                                                                and len(n.input) > 1}:
            reader = next(n for n in g.node if n.op_type in ("Mul", "Add") and node.output[0] in n.input[1:])
            roles[node.input[0]] = (reader.op_type, 1, reader)
    keep_nodes, new_inits = [], []
    for node in g.node:
        out = node.output[0] if node.output else ""
        if node.op_type == "ConstantOfShape" and node.input[0] in inits and out in roles:
            shape = tuple(int(d) for d in numpy_helper.to_array(inits[node.input[0]]))
            op, i, reader = roles[out]
            new_inits.append(numpy_helper.from_array(_SCALE[(op, i)](rng, shape, reader).astype(np.float32), out))
            continue
        keep_nodes.append(node)
    for t in list(g.initializer):
        if t.name in roles and t.data_type == TensorProto.FLOAT:
            op, i, reader = roles[t.name]
            shape = tuple(t.dims)
            t.CopyFrom(numpy_helper.from_array(_SCALE[(op, i)](rng, shape, reader).astype(np.float32), t.name))
    del g.node[:]
    g.node.extend(keep_nodes)
    g.initializer.extend(new_inits)
    used = {x for n in g.node for x in n.input} | {o.name for o in g.output}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    names = {t.name for t in g.initializer}
    inputs = [vi for vi in g.input if vi.name in used and (vi.name not in {t.name for t in inits.values()} or
                                                           vi.name in names)]
    del g.input[:]
    g.input.extend(inputs)
    for t in new_inits:  # IR 3 lists initializers among the inputs
        if model.ir_version < 4:
            g.input.append(helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)))
    return model


def data_input(model):
    inits = {t.name for t in model.graph.initializer}
    return next(vi for vi in model.graph.input if vi.name not in inits)


def with_outputs(model, names):
    """A copy of ``model`` that also outputs the values ``names`` (for comparing activations)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for name in names:
        if name not in have:
            m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return m


def ort_run(model, feeds: dict, outputs=None):
    ort = require_module("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(outputs, feeds)
