"""Learning-rate schedules: pure functions of the step, so resuming is exact.

``step`` counts optimizer updates already applied: the first update uses
``schedule(0)``.  A schedule is called, not stepped — it holds no state — so a
resumed run only needs the step count::

    sched = Warmup(Cosine(lr=0.1, total_steps=10_000), warmup_steps=500)
    for step in range(start, total):
        sched.apply(opt, step)      # opt.lr = sched(step)
        opt.step(net.named_parameters())

=============  =============================================================
Constant       ``lr``
StepDecay      ``lr * gamma ** (step // (every * steps_per_epoch))``
               (``every`` is in steps, or in epochs when ``steps_per_epoch``
               is given)
Cosine         ``min_lr + (lr - min_lr) * (1 + cos(pi * min(step, T) / T)) / 2``
               with ``T = total_steps``; stays at ``min_lr`` after ``T``
Warmup         for ``step < W``: ``inner(0) * (f + (1 - f) * step / W)``
               (linear from ``f * inner(0)``), then ``inner(step - W)``
               (the wrapped schedule starts when warm-up ends)
=============  =============================================================
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError

__all__ = ["Schedule", "Constant", "StepDecay", "Cosine", "Warmup", "SCHEDULES", "make_schedule"]


def _float(name, value, *, low=0.0, high=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"Argument `{name}` must be a number; received {value!r}.")
    v = float(value)
    if not math.isfinite(v) or (v <= low if low_open else v < low) or (high is not None and v > high):
        lo = "(" if low_open else "["
        raise ConfigError(
            f"Argument `{name}` must be a finite number in {lo}{low}, {high if high is not None else 'inf'}]; "
            f"received {value!r}."
        )
    return v


def _int(name, value, *, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise ConfigError(f"Argument `{name}` must be an integer >= {low}; received {value!r}.")
    return int(value)


class Schedule:
    """Base class: ``schedule(step) -> lr``; ``apply(optimizer, step)`` sets ``optimizer.lr``."""

    name = "schedule"

    def __call__(self, step: int) -> float:
        return self.lr_at(_int("step", step, low=0))

    def lr_at(self, step: int) -> float:
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def apply(self, optimizer, step: int) -> float:
        """Set ``optimizer.lr`` to ``self(step)`` and return it."""
        lr = self(step)
        optimizer.lr = lr
        return lr

    def config(self) -> dict:
        """JSON-serialisable description (``make_schedule(**config)`` rebuilds it)."""
        raise NotImplementedError  # pragma: no cover

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """``lr`` at every step."""

    name = "constant"

    def __init__(self, *, lr: float):
        self.lr = _float("lr", lr)

    def lr_at(self, step):
        return self.lr

    def config(self):
        return {"name": self.name, "lr": self.lr}


class StepDecay(Schedule):
    """``lr * gamma ** (step // (every * steps_per_epoch))``: multiply by ``gamma`` every ``every`` steps/epochs."""

    name = "step"

    def __init__(self, *, lr: float, gamma: float = 0.1, every: int, steps_per_epoch: int = 1):
        self.lr = _float("lr", lr)
        self.gamma = _float("gamma", gamma, high=1.0)
        self.every = _int("every", every)
        self.steps_per_epoch = _int("steps_per_epoch", steps_per_epoch)

    def lr_at(self, step):
        return self.lr * self.gamma ** (step // (self.every * self.steps_per_epoch))

    def config(self):
        return {"name": self.name, "lr": self.lr, "gamma": self.gamma, "every": self.every,
                "steps_per_epoch": self.steps_per_epoch}


class Cosine(Schedule):
    """Cosine annealing from ``lr`` at step 0 to ``min_lr`` at ``total_steps`` (and after)."""

    name = "cosine"

    def __init__(self, *, lr: float, total_steps: int, min_lr: float = 0.0):
        self.lr = _float("lr", lr)
        self.total_steps = _int("total_steps", total_steps)
        self.min_lr = _float("min_lr", min_lr)
        if self.min_lr > self.lr:
            raise ConfigError(f"Argument `min_lr` must not exceed `lr`={self.lr}; received {min_lr!r}.")

    def lr_at(self, step):
        t = min(step, self.total_steps) / self.total_steps
        return self.min_lr + (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * t)) / 2.0

    def config(self):
        return {"name": self.name, "lr": self.lr, "total_steps": self.total_steps, "min_lr": self.min_lr}


class Warmup(Schedule):
    """Linear warm-up over ``warmup_steps`` in front of any schedule (which then starts at step 0)."""

    name = "warmup"

    def __init__(self, schedule: Schedule, *, warmup_steps: int, start_factor: float = 0.0):
        if not isinstance(schedule, Schedule):
            raise ConfigError(f"Argument `schedule` must be a Schedule; received {schedule!r}.")
        self.schedule = schedule
        self.warmup_steps = _int("warmup_steps", warmup_steps)
        self.start_factor = _float("start_factor", start_factor, high=1.0)

    def lr_at(self, step):
        w = self.warmup_steps
        if step < w:
            f = self.start_factor
            return self.schedule.lr_at(0) * (f + (1.0 - f) * step / w)
        return self.schedule.lr_at(step - w)

    def config(self):
        inner = self.schedule.config()
        return {**inner, "warmup_steps": self.warmup_steps, "start_factor": self.start_factor}

    def __repr__(self):
        return f"Warmup({self.schedule!r}, warmup_steps={self.warmup_steps}, start_factor={self.start_factor})"


SCHEDULES = {"constant": Constant, "step": StepDecay, "cosine": Cosine}


def make_schedule(name: str, *, lr: float, warmup_steps: int = 0, start_factor: float = 0.0, **kwargs) -> Schedule:
    """Build a schedule by name (``constant``, ``step``, ``cosine``), wrapped in Warmup when ``warmup_steps > 0``.

    ``kwargs`` go to the class (``gamma``, ``every``, ``steps_per_epoch``,
    ``total_steps``, ``min_lr``); unknown names or arguments raise ConfigError.
    """
    cls = SCHEDULES.get(str(name).lower())
    if cls is None:
        raise ConfigError(f"Unknown schedule {name!r}; expected one of {', '.join(SCHEDULES)}.")
    try:
        inner = cls(lr=lr, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"Schedule {name!r} received invalid arguments {sorted(kwargs)}: {exc}.") from None
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)) or warmup_steps < 0:
        raise ConfigError(f"Argument `warmup_steps` must be an integer >= 0; received {warmup_steps!r}.")
    if warmup_steps == 0:
        return inner
    return Warmup(inner, warmup_steps=int(warmup_steps), start_factor=start_factor)
