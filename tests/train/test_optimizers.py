"""Optimizers: hand-computed first steps, torch.optim as oracle, weight decay, clipping, state."""
import math
import zlib

import numpy as np
import pytest

from convnet.errors import CheckpointError, ConfigError, NonFiniteError, ShapeError
from convnet.train import (
    OPTIMIZERS, SGD, Adagrad, Adam, Momentum, Nesterov, RMSProp, clip_grad_norm, global_grad_norm, load_checkpoint,
    make_optimizer, save_checkpoint,
)

torch = pytest.importorskip("torch")


def scalar_run(opt, grads, x0=1.0, dtype=np.float64):
    """Apply ``opt`` to one 1-element parameter with the given gradient sequence; return x after each step."""
    x = np.array([x0], dtype=dtype)
    out = []
    for g in grads:
        opt.step([("p", x, np.array([g], dtype=dtype))])
        out.append(float(x[0]))
    return out


# ---- hand-computed values ------------------------------------------------------------------------

def test_sgd_by_hand():
    assert scalar_run(SGD(lr=0.1), [0.5, 0.5]) == pytest.approx([0.95, 0.90], abs=1e-15)


def test_momentum_by_hand():
    # v1 = -0.1*0.5 = -0.05 -> x = 0.95;  v2 = 0.9*(-0.05) - 0.05 = -0.095 -> x = 0.855
    assert scalar_run(Momentum(lr=0.1, momentum=0.9), [0.5, 0.5]) == pytest.approx([0.95, 0.855], abs=1e-15)


def test_nesterov_by_hand():
    # step 1: v_prev=0, v=-0.05, x += 1.9*(-0.05) -> 0.905
    # step 2: v_prev=-0.05, v=-0.095, x += 0.9*0.05 + 1.9*(-0.095) = -0.1355 -> 0.7695
    assert scalar_run(Nesterov(lr=0.1, momentum=0.9), [0.5, 0.5]) == pytest.approx([0.905, 0.7695], abs=1e-15)


def test_adagrad_by_hand():
    # cache=0.25 -> x -= 0.1*0.5/0.5 = 0.1;  cache=0.5 -> x -= 0.05/sqrt(0.5)
    got = scalar_run(Adagrad(lr=0.1, eps=1e-12), [0.5, 0.5])
    assert got == pytest.approx([0.9, 0.9 - 0.05 / math.sqrt(0.5)], abs=1e-10)


def test_rmsprop_by_hand():
    c1 = 0.1 * 0.25
    c2 = 0.9 * c1 + 0.1 * 0.25
    x1 = 1.0 - 0.05 / math.sqrt(c1)
    got = scalar_run(RMSProp(lr=0.1, decay=0.9, eps=1e-12), [0.5, 0.5])
    assert got == pytest.approx([x1, x1 - 0.05 / math.sqrt(c2)], abs=1e-10)


def test_adam_by_hand():
    # step 1 with bias correction is x -= lr * sign(dx): mt = dx, vt = dx**2
    m = 0.1 * 0.5
    v = 0.001 * 0.25
    x1 = 1.0 - 0.1 * (m / 0.1) / (math.sqrt(v / 0.001) + 1e-8)
    m = 0.9 * m + 0.1 * (-1.0)
    v = 0.999 * v + 0.001 * 1.0
    x2 = x1 - 0.1 * (m / (1 - 0.9 ** 2)) / (math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8)
    got = scalar_run(Adam(lr=0.1, betas=(0.9, 0.999), eps=1e-8), [0.5, -1.0])
    assert got[0] == pytest.approx(0.9, abs=1e-7)
    assert got == pytest.approx([x1, x2], abs=1e-12)


def test_weight_decay_by_hand():
    # dx' = dx + wd * x = 0.5 + 0.1 * 1.0 = 0.6
    assert scalar_run(SGD(lr=0.1, weight_decay=0.1), [0.5]) == pytest.approx([0.94], abs=1e-15)


# ---- torch.optim as oracle -----------------------------------------------------------------------

CASES = [
    ("sgd", dict(lr=0.05), lambda p, wd: torch.optim.SGD(p, lr=0.05, weight_decay=wd)),
    ("momentum", dict(lr=0.05, momentum=0.9),
     lambda p, wd: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=wd)),
    ("nesterov", dict(lr=0.05, momentum=0.8),
     lambda p, wd: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=wd)),
    ("adagrad", dict(lr=0.1, eps=1e-10), lambda p, wd: torch.optim.Adagrad(p, lr=0.1, eps=1e-10, weight_decay=wd)),
    ("rmsprop", dict(lr=0.01, decay=0.95, eps=1e-8),
     lambda p, wd: torch.optim.RMSprop(p, lr=0.01, alpha=0.95, eps=1e-8, weight_decay=wd)),
    ("adam", dict(lr=0.01, betas=(0.85, 0.99), eps=1e-8),
     lambda p, wd: torch.optim.Adam(p, lr=0.01, betas=(0.85, 0.99), eps=1e-8, weight_decay=wd)),
]


@pytest.mark.oracle
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("name,kwargs,make_torch", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_matches_torch(name, kwargs, make_torch, weight_decay, dtype, rtol):
    rng = np.random.default_rng(zlib.crc32(f"{name}{weight_decay}".encode()))
    shapes = {"conv1.w": (3, 3, 2, 4), "conv1.b": (4,), "fc.w": (7, 3)}
    params = {n: rng.standard_normal(s).astype(dtype) for n, s in shapes.items()}
    tparams = {n: torch.tensor(p.copy(), requires_grad=True) for n, p in params.items()}
    ours = make_optimizer(name, weight_decay=weight_decay, **kwargs)
    theirs = make_torch(list(tparams.values()), weight_decay)
    for _ in range(6):
        grads = {n: rng.standard_normal(s).astype(dtype) for n, s in shapes.items()}
        ours.step([(n, params[n], grads[n]) for n in shapes])
        for n, t in tparams.items():
            t.grad = torch.tensor(grads[n])
        theirs.step()
        for n in shapes:
            assert params[n].dtype == dtype
            np.testing.assert_allclose(params[n], tparams[n].detach().numpy(), rtol=rtol, atol=rtol)


@pytest.mark.oracle
def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s) * 3 for s in [(4, 5), (5,), (2, 2, 3)]]
    named = [(f"p{i}", np.zeros_like(g), g.copy()) for i, g in enumerate(grads)]
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads):
        t.grad = torch.tensor(g)
    total_t = torch.nn.utils.clip_grad_norm_(tensors, max_norm=2.0)
    total = clip_grad_norm(named, 2.0)
    assert total == pytest.approx(float(total_t), rel=1e-12)
    for (_, _, g), t in zip(named, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)
    assert global_grad_norm(named) == pytest.approx(2.0, rel=1e-5)


def test_clip_norm_inside_step_scales_without_touching_grads():
    p = np.zeros(2)
    g = np.array([3.0, 4.0])  # norm 5
    opt = SGD(lr=1.0, clip_norm=1.0)
    opt.step([("p", p, g)])
    np.testing.assert_allclose(p, [-0.6, -0.8], rtol=1e-5)
    np.testing.assert_array_equal(g, [3.0, 4.0])
    assert opt.last_grad_norm == pytest.approx(5.0)


def test_clip_grad_norm_non_finite_names_the_parameter():
    named = [("a", np.zeros(2), np.ones(2)), ("b", np.zeros(2), np.array([np.nan, 1.0]))]
    with pytest.raises(NonFiniteError, match="'b'"):
        clip_grad_norm(named, 1.0)
    np.testing.assert_array_equal(named[0][2], [1.0, 1.0])
    assert math.isnan(clip_grad_norm(named, 1.0, error_if_nonfinite=False))


# ---- dtype, in-place, validation -----------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_float32_stays_float32_and_in_place(name):
    rng = np.random.default_rng(0)
    p = rng.standard_normal((5, 3)).astype(np.float32)
    buffer_address = p.__array_interface__["data"][0]
    opt = make_optimizer(name, weight_decay=1e-3)
    for _ in range(3):
        opt.step([("w", p, rng.standard_normal((5, 3)).astype(np.float32))])
    assert p.dtype == np.float32 and p.__array_interface__["data"][0] == buffer_address
    for key, value in opt.state_dict().items():
        if key != "step":
            assert value.dtype == np.float32, key


def test_float64_gradient_on_float32_param_keeps_float32():
    p = np.ones(3, np.float32)
    Adam(lr=0.1).step([("w", p, np.ones(3, np.float64))])
    assert p.dtype == np.float32


@pytest.mark.parametrize("bad", [
    lambda: SGD(lr=-1.0), lambda: SGD(lr=float("nan")), lambda: Momentum(momentum=1.0),
    lambda: Adam(betas=(0.9,)), lambda: Adam(betas=(0.9, 1.5)), lambda: Adagrad(eps=0.0),
    lambda: SGD(weight_decay=-0.1), lambda: SGD(clip_norm=0.0), lambda: RMSProp(decay="0.9"),
])
def test_bad_hyperparameters(bad):
    with pytest.raises(ConfigError):
        bad()


def test_lr_is_settable_and_validated():
    opt = SGD(lr=0.1)
    opt.lr = 0.0
    assert opt.lr == 0.0
    with pytest.raises(ConfigError, match="lr"):
        opt.lr = -0.5


def test_step_input_errors():
    opt = SGD()
    with pytest.raises(ShapeError, match="'w'"):
        opt.step([("w", np.zeros(3), np.zeros(4))])
    with pytest.raises(ConfigError, match="twice"):
        opt.step([("w", np.zeros(3), np.zeros(3)), ("w", np.zeros(3), np.zeros(3))])
    with pytest.raises(ConfigError, match="tuples"):
        opt.step([("w", np.zeros(3))])
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ConfigError, match="read-only"):
        opt.step([("w", ro, np.zeros(3))])


def test_make_optimizer_errors_and_config_round_trip():
    with pytest.raises(ConfigError, match="adam"):
        make_optimizer("adamw")
    with pytest.raises(ConfigError, match="momentum"):
        make_optimizer("adam", momentum=0.9)
    opt = make_optimizer("ADAM", lr=0.003, betas=[0.8, 0.9])
    assert isinstance(opt, Adam) and opt.betas == (0.8, 0.9)
    rebuilt = make_optimizer(**opt.config())
    assert rebuilt.config() == opt.config()


# ---- state ---------------------------------------------------------------------------------------

def _params(rng):
    return {"conv1_1.w": rng.standard_normal((3, 3, 1, 4)).astype(np.float32),
            "conv1_1.b": rng.standard_normal(4).astype(np.float32)}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_resume_through_checkpoint_is_bitwise_exact(name, tmp_path):
    rng = np.random.default_rng(1)
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in _params(rng).items()} for _ in range(6)]
    start = _params(np.random.default_rng(7))

    straight = {k: v.copy() for k, v in start.items()}
    opt = make_optimizer(name)
    for g in grads:
        opt.step([(k, straight[k], g[k]) for k in straight])

    resumed = {k: v.copy() for k, v in start.items()}
    opt1 = make_optimizer(name)
    for g in grads[:3]:
        opt1.step([(k, resumed[k], g[k]) for k in resumed])
    state = opt1.state_dict()
    if name == "momentum":
        assert sorted(state) == ["step", "velocity/conv1_1.b", "velocity/conv1_1.w"]
    assert state["step"].shape == () and int(state["step"]) == 3
    save_checkpoint(tmp_path / "c.safetensors", {**{f"optim/{k}": v for k, v in state.items()}, **resumed})
    tensors, _ = load_checkpoint(tmp_path / "c.safetensors")
    opt2 = make_optimizer(name)
    opt2.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("optim/")},
                         params=[(k, tensors[k], None) for k in resumed])
    params2 = {k: tensors[k] for k in resumed}
    for g in grads[3:]:
        opt2.step([(k, params2[k], g[k]) for k in params2])
    for k in straight:
        assert np.array_equal(straight[k], params2[k]), k


def test_state_dict_is_a_copy():
    p = np.ones(2)
    opt = Momentum(lr=0.1)
    opt.step([("w", p, np.ones(2))])
    state = opt.state_dict()
    opt.step([("w", p, np.ones(2))])
    np.testing.assert_array_equal(state["velocity/w"], [-0.1, -0.1])


def test_load_state_dict_refuses_mismatches():
    p = np.ones((2, 3))
    src = Adam()
    src.step([("w", p, np.ones((2, 3)))])
    state = src.state_dict()

    with pytest.raises(CheckpointError, match="'m'"):
        Momentum().load_state_dict(state)
    with pytest.raises(CheckpointError, match="step"):
        Adam().load_state_dict({k: v for k, v in state.items() if k != "step"})
    with pytest.raises(CheckpointError, match="shape"):
        Adam().load_state_dict(state, params={"w": (3, 2)})
    with pytest.raises(CheckpointError, match="no slots for b"):
        Adam().load_state_dict(state, params={"w": (2, 3), "b": (3,)})
    with pytest.raises(CheckpointError, match="different parameter sets"):
        Adam().load_state_dict({"step": state["step"], "m/w": state["m/w"]})
    with pytest.raises(CheckpointError, match="form"):
        Adam().load_state_dict({**state, "oops": np.zeros(1)})
    # deferred check: on the first step
    opt = Adam()
    opt.load_state_dict(state)
    with pytest.raises(CheckpointError, match="unknown w"):
        opt.step([("v", np.ones((2, 3)), np.ones((2, 3)))])
    # and a matching one works
    ok = Adam()
    ok.load_state_dict(state)
    ok.step([("w", p, np.ones((2, 3)))])
    assert ok.steps == 2


def test_sgd_state_has_only_the_step():
    opt = SGD()
    opt.step([("w", np.ones(2), np.ones(2))])
    assert list(opt.state_dict()) == ["step"]
    with pytest.raises(CheckpointError, match="velocity"):
        SGD().load_state_dict({"step": np.array(1), "velocity/w": np.zeros(2)})
