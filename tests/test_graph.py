"""The graph's vocabulary (convnet.graph): one ownership plan that Net follows and the memory
model replays, and dependencies that point one way (vocabulary → layers → net → analysis)."""
import numpy as np
import pytest

from convnet.analysis.memory import MemoryModel, output_storage
from convnet.graph import INPUT, SUM_INTO_HELD, SUM_INTO_NEW, SUM_NEW_ARRAY, Node, consumers, plan_ownership
from convnet.layers import Add, BatchNorm, Conv2D, ReLU
from convnet.net import Net
from test_import_graph import _imports, _modules
from test_net_inplace import _branchy_net


def test_the_plan_of_a_branchy_net():
    net = _branchy_net()
    plan = net.ownership()
    assert plan == plan_ownership(net.nodes, net.output_name)
    # forward: what test_net_inplace sees the layers handed
    assert plan.writes_into == {"block_relu1": "block_bn1", "block_add": "block_bn2", "block_relu2": "block_add",
                                "add_lr": "conv_l"}
    assert plan.free_inputs(net.node("add_lr")) == [True, True]
    assert plan.free_inputs(net.node("block_add")) == [True, False]
    assert plan.free_inputs(net.node("relu_in")) == [False]  # the caller's batch is no node
    assert net.output_name not in plan.private
    # backward: the ReLUs that overwrite the gradient they receive, and how fan-outs are summed
    assert plan.grad_inplace == {"relu_out", "block_relu2", "block_relu1", "relu_in"}
    assert plan.sums[("conv_l", 0)] == SUM_INTO_HELD  # into conv_r's new dx of relu_out
    assert ("add_shared", 1) not in plan.sums  # bn's first gradient: the ADD's dy, held by no one alone
    assert plan.sums[("relu_shared", 0)] == SUM_INTO_NEW  # so the ReLU's new dx of bn takes the sum
    assert plan.skip_dx == frozenset()


def test_no_inplace_means_an_empty_forward_plan_and_new_sums():
    net = _branchy_net()
    net.inplace = False
    plan = net.ownership()
    assert plan.private == frozenset() and plan.writes_into == {} and plan.grad_inplace == frozenset()
    assert plan.sums and set(plan.sums.values()) == {SUM_NEW_ARRAY}
    assert set(output_storage(net).values()) == {"new", "fused"}  # a ReLU run by the BN before it
    net.fuse = False
    assert set(output_storage(net).values()) == {"new"}


def test_the_memory_model_reads_the_same_plan():
    net = _branchy_net()
    storage = output_storage(net)
    assert {k for k, v in storage.items() if v == "in place"} == set(net.ownership().writes_into)
    assert MemoryModel(net).estimate(2).activations_forward < MemoryModel(_without_inplace()).estimate(2).activations_forward


def _without_inplace():
    net = _branchy_net()
    net.inplace = False
    return net


def test_input_grad_false_skips_the_first_layers_dx():
    net = Net.sequential([Conv2D(4, 3, padding=1), ReLU(), Conv2D(2, 1)], input_shape=(5, 5, 2))
    assert net.ownership(input_grad=False).skip_dx == {"conv1"}
    assert net.ownership().skip_dx == frozenset()
    net.build(rng=np.random.default_rng(0))
    y = net.forward(np.ones((2, 5, 5, 2), dtype=np.float32), train=True)
    assert net.backward(np.ones_like(y), input_grad=False) is None


def test_net_follows_the_plan(monkeypatch):
    """Net.forward hands a layer exactly the inputs the plan frees, and Net.backward runs a ReLU
    in place exactly where the plan says (a plan changed here changes what the net does)."""
    net = Net(input_shape=(4, 4, 2))
    net.add(Conv2D(3, 3, padding=1, name="c"))
    net.add(BatchNorm(name="bn"))
    net.add(ReLU(name="r"))
    net.add(Conv2D(3, 1, name="c2"), inputs="r")
    net.add(Add(name="a"), inputs=["c2", "r"])
    net.build(rng=np.random.default_rng(0))
    net.fuse = False  # else the BN runs this ReLU (tests/test_net_fusion.py)
    seen = {}
    relu = net["r"]
    forward, backward = relu.forward, relu.backward

    def spy_forward(x, **kw):
        seen["fwd"] = kw.get("inplace")
        return forward(x, **kw)

    def spy_backward(dy, **kw):
        seen["bwd"] = kw.get("inplace", False)
        return backward(dy, **kw)

    monkeypatch.setattr(relu, "forward", spy_forward)
    monkeypatch.setattr(relu, "backward", spy_backward)
    plan = net.ownership()
    y = net.forward(np.ones((2, 4, 4, 2), dtype=np.float32), train=True)
    net.backward(np.ones_like(y))
    assert seen["fwd"] == plan.free_inputs(net.node("r"))[0] is True
    assert seen["bwd"] is ("r" in plan.grad_inplace) is True


def test_consumers_and_node():
    relu = ReLU()
    nodes = [Node("a", relu, (INPUT,)), Node("b", Add(), ("a", "a"))]
    assert consumers(nodes) == {INPUT: ["a"], "a": ["b", "b"], "b": []}
    assert nodes[1].multi_input and not nodes[0].multi_input
    plan = plan_ownership(nodes, "b")
    assert plan.private == frozenset()  # read twice by one node: not private
    assert plan.sums == {("b", 1): SUM_NEW_ARRAY}  # ADD hands one dy to both: their sum is a new array


# -- dependencies point one way ---------------------------------------------------------------------
def _direct_imports():
    modules = _modules()
    return {name: {t for t, _ in _imports(name, path, modules)} for name, path in modules.items()}


def _reaches(imports, name, forbidden):
    return sorted(t for t in imports[name] if t.startswith(forbidden))


def test_the_vocabulary_imports_nothing_of_convnet():
    imports = _direct_imports()
    for leaf in ("convnet.graph", "convnet.layers.accounting"):
        assert imports[leaf] == set(), leaf
    assert imports["convnet.layers.spelling"] == {"convnet.errors"}


@pytest.mark.parametrize("prefix, forbidden", [
    ("convnet.layers", ("convnet.net", "convnet.pattern", "convnet.analysis", "convnet.zoo", "convnet.train")),
    ("convnet.net", ("convnet.analysis", "convnet.pattern", "convnet.zoo", "convnet.train")),
    ("convnet.zoo", ("convnet.analysis", "convnet.train")),
    ("convnet.graph", ("convnet.",)),
])
def test_dependencies_point_one_way(prefix, forbidden):
    imports = _direct_imports()
    for name in imports:
        if name == prefix or name.startswith(prefix + "."):
            assert not _reaches(imports, name, forbidden), (name, _reaches(imports, name, forbidden))


def test_analysis_takes_the_vocabulary_from_the_graph_module():
    imports = _direct_imports()
    for name in ("costs", "footprint", "memory", "summary", "receptive", "lint"):
        assert "convnet.net" not in imports[f"convnet.analysis.{name}"], name
