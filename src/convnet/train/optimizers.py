"""Gradient-descent optimizers, with the update rules written out in full.

Each optimizer updates parameters IN PLACE (the arrays belong to the layers)::

    opt = Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    net.backward(...)
    opt.step(net.named_parameters())     # iterable of (name, param, grad)

``named_params`` yields ``(name, param_array, grad_array)`` tuples with names
such as ``"conv1_1.w"``; ``param`` and ``grad`` have the same shape.  Slots
(velocity, caches, moments) are kept per name and have the parameter's shape
and dtype, so float32 parameters stay float32.

The rules (``x`` a parameter, ``dx`` its gradient, ``t`` the step count
starting at 1), as in the CS231n notes:

==========  ===============================================================
SGD         ``x += -lr * dx``
Momentum    ``v = mu * v - lr * dx;  x += v``
Nesterov    ``v_prev = v;  v = mu * v - lr * dx;  x += -mu * v_prev + (1 + mu) * v``
Adagrad     ``cache += dx**2;  x += -lr * dx / (sqrt(cache) + eps)``
RMSProp     ``cache = decay * cache + (1 - decay) * dx**2;  x += -lr * dx / (sqrt(cache) + eps)``
Adam        ``m = b1 * m + (1 - b1) * dx;  mt = m / (1 - b1**t)``
            ``v = b2 * v + (1 - b2) * dx**2;  vt = v / (1 - b2**t)``
            ``x += -lr * mt / (sqrt(vt) + eps)``
==========  ===============================================================

Before the rule, two optional changes to the gradient, in this order:

* ``clip_norm``: if the global L2 norm of all gradients of the step exceeds
  ``clip_norm``, every gradient is scaled by ``clip_norm / (norm + 1e-6)``
  (as ``torch.nn.utils.clip_grad_norm_``); the layers' grad arrays are not
  modified.
* ``weight_decay``: L2 regularisation added to the gradient,
  ``dx = dx + weight_decay * x`` (as ``torch.optim``'s ``weight_decay``; for
  Adam this is Adam-with-L2, not AdamW).

Momentum keeps the learning rate inside the velocity (the CS231n form).  With
a constant ``lr`` this equals ``torch.optim.SGD(momentum=mu)``, which keeps
``v' = mu * v' + dx`` and steps ``x -= lr * v'``; when a schedule changes
``lr`` the two forms differ slightly (ours applies the new rate only to new
gradients).

Checkpoints: ``state_dict()`` is a flat ``dict[str, numpy.ndarray]`` with the
step count under ``"step"`` (a 0-d int64 array) and one entry per slot and
parameter, ``"<slot>/<param name>"`` (``"velocity/conv1_1.w"``,
``"m/fc8.b"``).  ``load_state_dict`` refuses, with a CheckpointError, a state
whose slot kinds, parameter names or shapes do not match.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np

from ..backend import check_float_array, get_array_module, to_numpy
from ..errors import CheckpointError, ConfigError, ShapeError
from .clipping import clip_coefficient

__all__ = [
    "Optimizer",
    "SGD",
    "Momentum",
    "Nesterov",
    "Adagrad",
    "RMSProp",
    "Adam",
    "OPTIMIZERS",
    "make_optimizer",
]


def _check_number(name: str, value, *, low=None, high=None, low_open=False, high_open=False):
    """Validate a float hyperparameter lying in [low, high] (or open ends); return it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"Argument `{name}` must be a number; received {value!r}.")
    v = float(value)
    bad = not math.isfinite(v)
    if low is not None:
        bad = bad or (v <= low if low_open else v < low)
    if high is not None:
        bad = bad or (v >= high if high_open else v > high)
    if bad:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        rng = f"{lo}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi}"
        raise ConfigError(f"Argument `{name}` must be a finite number in {rng}; received {value!r}.")
    return v


class Optimizer:
    """Base class: validation, slots, weight decay, clipping and checkpoint state.

    Subclasses set ``name`` and ``slot_names`` and write the rule in ``_update``.
    """

    name = "optimizer"
    slot_names: tuple[str, ...] = ()

    def __init__(self, *, lr: float, weight_decay: float = 0.0, clip_norm: float | None = None):
        self.lr = lr
        self.weight_decay = _check_number("weight_decay", weight_decay, low=0.0)
        self.clip_norm = None if clip_norm is None else _check_number("clip_norm", clip_norm, low=0.0, low_open=True)
        self.steps = 0  # number of completed step() calls
        self.last_grad_norm: float | None = None  # global norm before clipping (when clip_norm is set)
        self._slots: dict[str, dict[str, object]] = {k: {} for k in self.slot_names}
        self._unverified = False  # slots came from load_state_dict and were not yet matched to params

    # -- hyperparameters -------------------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate; schedules set it before each step."""
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = _check_number("lr", value, low=0.0)

    def hyperparameters(self) -> dict:
        """The constructor arguments (for configuration files and hashes)."""
        hp = {"lr": self.lr, "weight_decay": self.weight_decay, "clip_norm": self.clip_norm}
        hp.update(self._extra_hyperparameters())
        return hp

    def config(self) -> dict:
        """``{"name": ..., **hyperparameters}``; ``make_optimizer(**config)`` rebuilds it."""
        return {"name": self.name, **self.hyperparameters()}

    def _extra_hyperparameters(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"

    # -- the step --------------------------------------------------------------
    def step(self, named_params: Iterable) -> None:
        """Apply one update to every ``(name, param, grad)`` in ``named_params``, in place; then call
        ``weights_changed()`` of each layer that owns one (entries of :meth:`Net.named_parameters
        <convnet.net.Net.named_parameters>` name it; a plain tuple's caller bumps it itself)."""
        items = self._collect(named_params)
        if self._unverified:
            self._verify_slots({name: p.shape for name, p, _ in items}, source="the parameters of the first step")
        scale = 1.0
        if self.clip_norm is not None:
            scale, self.last_grad_norm = clip_coefficient([g for _, _, g in items], self.clip_norm)
        self.steps += 1
        for name, p, g in items:
            if scale != 1.0:
                g = g * scale
            if self.weight_decay:
                g = g + self.weight_decay * p  # L2: dx = dx + weight_decay * x
            self._update(name, p, g)
        # the layers that own the updated arrays (Net.named_parameters names them): weights changed
        for owner in {id(o): o for o in (getattr(e, "owner", None) for e in items) if o is not None}.values():
            owner.weights_changed()

    def _update(self, name: str, x, dx) -> None:
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def _collect(self, named_params: Iterable) -> list:
        items, seen = [], set()
        try:
            iterator = iter(named_params)
        except TypeError:
            raise ConfigError(
                f"Argument `named_params` must be an iterable of (name, param, grad) tuples; "
                f"received {type(named_params).__name__}."
            ) from None
        for entry in iterator:
            if not isinstance(entry, tuple) or len(entry) != 3:
                raise ConfigError(
                    f"Argument `named_params` must yield (name, param, grad) tuples; received {entry!r:.80}."
                )
            name, p, g = entry
            if not isinstance(name, str) or not name:
                raise ConfigError(f"Parameter names must be non-empty strings; received {name!r}.")
            if name in seen:
                raise ConfigError(f"Parameter name {name!r} appears twice in one optimizer step.")
            seen.add(name)
            check_float_array(p, name)
            check_float_array(g, f"{name} (gradient)")
            if g.shape != p.shape:
                raise ShapeError(
                    f"Gradient of {name!r} has shape {tuple(g.shape)} but the parameter has shape {tuple(p.shape)}."
                )
            flags = getattr(p, "flags", None)
            if flags is not None and not flags.writeable:
                raise ConfigError(f"Parameter {name!r} is a read-only array; the optimizer updates it in place.")
            items.append(entry)  # (a NamedParam keeps its owner)
        return items

    def _slot(self, kind: str, name: str, x):
        """The ``kind`` slot of parameter ``name``: zeros like ``x`` on first use."""
        slots = self._slots[kind]
        s = slots.get(name)
        if s is None:
            s = get_array_module(x).zeros_like(x)
            slots[name] = s
        elif s.shape != x.shape:
            raise ShapeError(
                f"Optimizer slot {kind}/{name} has shape {tuple(s.shape)} but the parameter now has shape "
                f"{tuple(x.shape)}; create a new optimizer when the network changes."
            )
        elif get_array_module(s) is not get_array_module(x) or s.dtype != x.dtype:
            s = get_array_module(x).asarray(s, dtype=x.dtype)
            slots[name] = s
        return s

    # -- checkpoint state ------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat copy of the state: ``"step"`` and ``"<slot>/<param name>"`` arrays."""
        out: dict[str, np.ndarray] = {"step": np.array(self.steps, dtype=np.int64)}
        for kind in self.slot_names:
            for name, s in sorted(self._slots[kind].items()):
                out[f"{kind}/{name}"] = np.array(to_numpy(s), copy=True)
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray], *, params: Iterable | Mapping | None = None) -> None:
        """Restore ``state`` (from ``state_dict``).

        ``params`` (optional) is what ``step`` will receive — ``(name, param,
        grad)`` tuples — or a mapping ``name -> array or shape``; when given the
        state is matched against it now, otherwise on the first ``step``.
        Raises CheckpointError naming the first mismatch.
        """
        if not isinstance(state, Mapping):
            raise CheckpointError(f"Optimizer state must be a mapping of arrays; received {type(state).__name__}.")
        if "step" not in state:
            raise CheckpointError(f"Optimizer state for {type(self).__name__} has no 'step' entry.")
        step = np.asarray(state["step"])
        if step.shape != () or step.dtype.kind not in "iu" or int(step) < 0:
            raise CheckpointError(
                f"Optimizer state entry 'step' must be a non-negative 0-d integer array; received shape "
                f"{step.shape} and dtype {step.dtype}."
            )
        slots: dict[str, dict[str, np.ndarray]] = {k: {} for k in self.slot_names}
        for key, value in state.items():
            if key == "step":
                continue
            kind, sep, name = str(key).partition("/")
            if not sep or not name:
                raise CheckpointError(f"Optimizer state key {key!r} is not of the form '<slot>/<parameter name>'.")
            if kind not in slots:
                expected = ", ".join(repr(k) for k in self.slot_names) or "no slots"
                raise CheckpointError(
                    f"Optimizer state has slot {kind!r} (key {key!r}) but {type(self).__name__} keeps {expected}; "
                    f"was it saved by another optimizer?"
                )
            arr = np.asarray(value)
            if arr.dtype.kind != "f":
                raise CheckpointError(f"Optimizer state {key!r} has dtype {arr.dtype}; expected a float array.")
            slots[kind][name] = np.array(arr, copy=True)
        names = [set(v) for v in slots.values()]
        if names and any(n != names[0] for n in names):
            raise CheckpointError(
                f"Optimizer state for {type(self).__name__} has slots for different parameter sets in "
                f"{', '.join(self.slot_names)}."
            )
        live = {n: s.shape for kind in self.slot_names for n, s in self._slots[kind].items()}
        self._slots = slots
        self.steps = int(step)
        self._unverified = bool(self.slot_names)
        if live:
            self._verify_slots(live, source="the optimizer's existing slots")
        if params is not None:
            self._verify_slots(_shapes_of(params), source="argument `params`")

    def _verify_slots(self, shapes: Mapping[str, tuple], *, source: str) -> None:
        if not self.slot_names:
            self._unverified = False
            return
        have = self._slots[self.slot_names[0]]
        missing = sorted(set(shapes) - set(have))
        extra = sorted(set(have) - set(shapes))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"no slots for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
            if extra:
                parts.append(f"slots for unknown {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}")
            raise CheckpointError(
                f"Loaded {type(self).__name__} state does not match {source}: {'; '.join(parts)}."
            )
        for kind in self.slot_names:
            for name, s in self._slots[kind].items():
                if tuple(s.shape) != tuple(shapes[name]):
                    raise CheckpointError(
                        f"Loaded optimizer slot {kind}/{name} has shape {tuple(s.shape)} but {source} give "
                        f"{name!r} shape {tuple(shapes[name])}."
                    )
        self._unverified = False


def _shapes_of(params) -> dict[str, tuple]:
    if isinstance(params, Mapping):
        return {n: tuple(getattr(v, "shape", v)) for n, v in params.items()}
    out = {}
    for entry in params:
        if not isinstance(entry, tuple) or len(entry) < 2:
            raise ConfigError(f"Argument `params` must yield (name, param, grad) tuples; received {entry!r:.80}.")
        out[entry[0]] = tuple(entry[1].shape)
    return out


class SGD(Optimizer):
    """Vanilla gradient descent: ``x += -lr * dx``."""

    name = "sgd"

    def __init__(self, *, lr: float = 1e-2, weight_decay: float = 0.0, clip_norm: float | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, clip_norm=clip_norm)

    def _update(self, name, x, dx):
        x -= self.lr * dx  # x += -lr * dx


class Momentum(Optimizer):
    """SGD with momentum: ``v = mu * v - lr * dx;  x += v``; slot ``velocity``."""

    name = "momentum"
    slot_names = ("velocity",)

    def __init__(self, *, lr: float = 1e-2, momentum: float = 0.9, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, clip_norm=clip_norm)
        self.momentum = _check_number("momentum", momentum, low=0.0, high=1.0, high_open=True)

    def _extra_hyperparameters(self):
        return {"momentum": self.momentum}

    def _update(self, name, x, dx):
        mu, lr = self.momentum, self.lr
        v = self._slot("velocity", name, x)
        v *= mu
        v -= lr * dx  # v = mu * v - lr * dx   (integrate velocity)
        x += v        # x += v                 (integrate position)


class Nesterov(Momentum):
    """Nesterov momentum: ``v_prev = v;  v = mu * v - lr * dx;  x += -mu * v_prev + (1 + mu) * v``."""

    name = "nesterov"

    def _update(self, name, x, dx):
        mu, lr = self.momentum, self.lr
        v = self._slot("velocity", name, x)
        v_prev = v.copy()              # back this up
        v *= mu
        v -= lr * dx                   # v = mu * v - lr * dx  (velocity update stays the same)
        x += -mu * v_prev + (1 + mu) * v  # position update changes form


class Adagrad(Optimizer):
    """Adagrad: ``cache += dx**2;  x += -lr * dx / (sqrt(cache) + eps)``; slot ``cache``."""

    name = "adagrad"
    slot_names = ("cache",)

    def __init__(self, *, lr: float = 1e-2, eps: float = 1e-8, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, clip_norm=clip_norm)
        self.eps = _check_number("eps", eps, low=0.0, low_open=True)

    def _extra_hyperparameters(self):
        return {"eps": self.eps}

    def _update(self, name, x, dx):
        xp = get_array_module(x)
        cache = self._slot("cache", name, x)
        cache += dx * dx                                    # cache += dx**2
        x -= self.lr * dx / (xp.sqrt(cache) + self.eps)     # x += -lr * dx / (sqrt(cache) + eps)


class RMSProp(Optimizer):
    """RMSProp: ``cache = decay * cache + (1 - decay) * dx**2;  x += -lr * dx / (sqrt(cache) + eps)``."""

    name = "rmsprop"
    slot_names = ("cache",)

    def __init__(self, *, lr: float = 1e-3, decay: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, clip_norm=clip_norm)
        self.decay = _check_number("decay", decay, low=0.0, high=1.0, high_open=True)
        self.eps = _check_number("eps", eps, low=0.0, low_open=True)

    def _extra_hyperparameters(self):
        return {"decay": self.decay, "eps": self.eps}

    def _update(self, name, x, dx):
        xp = get_array_module(x)
        cache = self._slot("cache", name, x)
        cache *= self.decay
        cache += (1 - self.decay) * (dx * dx)               # cache = decay * cache + (1 - decay) * dx**2
        x -= self.lr * dx / (xp.sqrt(cache) + self.eps)     # x += -lr * dx / (sqrt(cache) + eps)


class Adam(Optimizer):
    """Adam with bias correction; slots ``m`` (first moment) and ``v`` (second moment).

    ``m = b1*m + (1-b1)*dx;  mt = m/(1-b1**t);  v = b2*v + (1-b2)*dx**2;  vt = v/(1-b2**t);
    x += -lr * mt / (sqrt(vt) + eps)`` with ``t`` the step count starting at 1.
    """

    name = "adam"
    slot_names = ("m", "v")

    def __init__(self, *, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, clip_norm: float | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, clip_norm=clip_norm)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ConfigError(f"Argument `betas` must be a pair (beta1, beta2); received {betas!r}.")
        self.betas = (
            _check_number("betas[0]", betas[0], low=0.0, high=1.0, high_open=True),
            _check_number("betas[1]", betas[1], low=0.0, high=1.0, high_open=True),
        )
        self.eps = _check_number("eps", eps, low=0.0, low_open=True)

    def _extra_hyperparameters(self):
        return {"betas": list(self.betas), "eps": self.eps}

    def _update(self, name, x, dx):
        xp = get_array_module(x)
        b1, b2 = self.betas
        t = self.steps
        m = self._slot("m", name, x)
        v = self._slot("v", name, x)
        m *= b1
        m += (1 - b1) * dx           # m = beta1*m + (1-beta1)*dx
        mt = m / (1 - b1 ** t)       # bias correction
        v *= b2
        v += (1 - b2) * (dx * dx)    # v = beta2*v + (1-beta2)*(dx**2)
        vt = v / (1 - b2 ** t)
        x -= self.lr * mt / (xp.sqrt(vt) + self.eps)  # x += -lr * mt / (sqrt(vt) + eps)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, Adagrad, RMSProp, Adam)
}


def make_optimizer(name: str, **kwargs) -> Optimizer:
    """Build an optimizer by name (``sgd``, ``momentum``, ``nesterov``, ``adagrad``, ``rmsprop``, ``adam``).

    ``kwargs`` are the class's keyword arguments; an unknown name or argument
    raises ConfigError listing what is accepted.
    """
    key = str(name).lower()
    cls = OPTIMIZERS.get(key)
    if cls is None:
        raise ConfigError(f"Unknown optimizer {name!r}; expected one of {', '.join(sorted(OPTIMIZERS))}.")
    import inspect

    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"Optimizer {key!r} does not take argument(s) {', '.join(unknown)}; it accepts {', '.join(accepted)}."
        )
    if "betas" in kwargs and isinstance(kwargs["betas"], list):
        kwargs["betas"] = tuple(kwargs["betas"])
    return cls(**kwargs)
