"""Learning-rate schedules: closed forms, torch.optim.lr_scheduler as oracle, purity, validation."""
import math

import pytest

from convnet.errors import ConfigError
from convnet.train import SGD, Constant, Cosine, StepDecay, Warmup, make_schedule

torch = pytest.importorskip("torch")


def test_constant():
    s = Constant(lr=0.1)
    assert [s(t) for t in (0, 1, 1000)] == [0.1, 0.1, 0.1]


def test_step_decay_in_steps_and_epochs():
    s = StepDecay(lr=1.0, gamma=0.5, every=3)
    assert [s(t) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    e = StepDecay(lr=1.0, gamma=0.1, every=2, steps_per_epoch=10)  # every 2 epochs of 10 steps
    assert e(19) == 1.0 and e(20) == pytest.approx(0.1) and e(40) == pytest.approx(0.01)


def test_cosine_end_points_and_middle():
    s = Cosine(lr=1.0, total_steps=100, min_lr=0.1)
    assert s(0) == 1.0
    assert s(50) == pytest.approx(0.55)
    assert s(100) == pytest.approx(0.1) and s(500) == pytest.approx(0.1)


def test_warmup_is_linear_then_hands_over():
    s = Warmup(Cosine(lr=1.0, total_steps=10), warmup_steps=4)
    assert [s(t) for t in range(4)] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert s(4) == 1.0  # the cosine starts when warm-up ends
    assert s(9) == pytest.approx(Cosine(lr=1.0, total_steps=10)(5))
    f = Warmup(Constant(lr=2.0), warmup_steps=2, start_factor=0.5)
    assert [f(0), f(1), f(2)] == pytest.approx([1.0, 1.5, 2.0])


@pytest.mark.oracle
def test_step_and_cosine_match_torch():
    p = [torch.zeros(1, requires_grad=True)]
    opt = torch.optim.SGD(p, lr=0.3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.3)
    ours = StepDecay(lr=0.3, gamma=0.3, every=4)
    for t in range(20):
        assert ours(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        sched.step()
    opt = torch.optim.SGD(p, lr=0.3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=15, eta_min=0.01)
    ours = Cosine(lr=0.3, total_steps=15, min_lr=0.01)
    for t in range(16):
        assert ours(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()


def test_pure_function_of_step_and_apply():
    s = make_schedule("cosine", lr=0.5, total_steps=50, warmup_steps=5)
    forward = [s(t) for t in range(60)]
    assert [s(t) for t in reversed(range(60))] == forward[::-1]
    opt = SGD(lr=9.0)
    assert s.apply(opt, 7) == opt.lr == forward[7]


def test_make_schedule_and_config():
    s = make_schedule("step", lr=0.1, gamma=0.5, every=10)
    assert isinstance(s, StepDecay) and s.config() == {
        "name": "step", "lr": 0.1, "gamma": 0.5, "every": 10, "steps_per_epoch": 1}
    w = make_schedule("constant", lr=0.1, warmup_steps=3)
    assert isinstance(w, Warmup) and w.config()["warmup_steps"] == 3
    assert math.isclose(w(3), 0.1)


@pytest.mark.parametrize("bad", [
    lambda: make_schedule("linear", lr=0.1),
    lambda: make_schedule("step", lr=0.1, every=10, gama=0.1),
    lambda: make_schedule("constant", lr=0.1, warmup_steps=-1),
    lambda: StepDecay(lr=0.1, every=0),
    lambda: Cosine(lr=0.1, total_steps=10, min_lr=0.2),
    lambda: Constant(lr=float("inf")),
    lambda: Warmup(0.1, warmup_steps=3),
    lambda: Constant(lr=0.1)(-1),
    lambda: Constant(lr=0.1)(1.5),
])
def test_bad_arguments(bad):
    with pytest.raises(ConfigError):
        bad()
