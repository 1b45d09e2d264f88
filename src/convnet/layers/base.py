"""The life of a layer, in one place.

A layer is a thin stateful wrapper around a stateless op pair
(``*_forward -> (y, cache)`` / ``*_backward(dy, cache)``).  It owns its
parameters and their gradients, and nothing else: no optimizer, no history of
inputs.

* ``__init__(...)`` — hyperparameters, keyword-only after the obvious first one
  (``Conv2D(64, 3, stride=1, padding=1)``); validated here, once.
* ``build(input_shape, *, rng=None, xp=None)`` — ``input_shape`` is per sample
  (``(H, W, C)`` for images, ``(D,)`` for vectors).  Creates ``params`` from a
  seeded ``numpy.random.Generator`` (He for layers followed by ReLU, Xavier on
  request) as arrays of the module ``xp``.  Called automatically by the first ``forward``
  (with the module of its input).
* ``output_shape(input_shape)`` — the per-sample output shape, without running.
* ``forward(x, *, train=False, keep_cache=True)`` — ``x`` is ``(N, *input_shape)``.
  With ``keep_cache=False`` (inference mode) nothing is kept for backward.
* ``inplace`` / ``output_private`` / ``grad_private`` — the in-place contract with
  :class:`~convnet.net.Net`, read by :func:`convnet.graph.plan_ownership`: a layer with
  ``inplace = True`` (ReLU, Add) takes ``forward(..., inplace=...)`` and may then overwrite
  the input ``inplace_target`` names; the net passes it only for an input that no one else
  reads — a node's output read by this one node alone, from a layer with
  ``output_private = True`` (its output is a new array that its cache does not hold: CONV,
  BN, FC, ADD, ...).
* ``backward(dy) -> dx`` — fills ``grads`` (same keys as ``params``); the cache
  of the last forward is released.
* ``params`` / ``grads`` — dicts of arrays sharing keys (``"w"``, ``"b"``;
  BatchNorm ``"gamma"``, ``"beta"``).  ``state`` holds non-trained buffers
  (BatchNorm running statistics).  All are created with the array module ``xp`` given to
  ``build`` (NumPy by default; the net passes its own, :attr:`Net.xp`), from numbers drawn
  on the host, so a net gives the same weights on any device; ``to(xp)`` moves them.
* ``weights_version`` / ``weights_changed()`` — a counter of the parameters' values: the
  optimizers' step, the loaders (checkpoints, fine-tuning, ONNX and torch state dicts) and
  ``to(xp)`` bump it, and a layer keeps weight transforms made from its parameters (Conv2D's
  prepacked Winograd filters, its weights with the next BN folded in) only while it is unchanged.
  **Whoever edits ``layer.params`` or ``layer.state`` in place calls ``layer.weights_changed()``
  afterwards** (assigning a new array is noticed anyway).

What a layer says about itself (class attributes and methods; the analysis, the pattern
language and the net only ask):

* ``kind`` (the summary's type column: "CONV", "MAXPOOL", ...) and ``name_prefix`` (automatic
  node names: ``conv1``, ``pool2``);
* ``pattern_words``, ``pattern_options``, ``pattern_size``, ``pattern_arg``,
  ``pattern_args(spelling)`` and ``to_pattern()`` — its spelling in the pattern language
  (:mod:`convnet.layers.spelling`);
* ``cost(input_shapes, output_shape)`` — weights, MACs and FLOPs per sample and its
  receptive-field window (:class:`~convnet.layers.accounting.LayerCost`);
* ``footprint(input_shapes, output_shape, *, batch, itemsize, train)`` — what its cache holds
  and the scratch its ops need (:class:`~convnet.layers.accounting.Footprint`).

A new layer is one file here (its class), one op pair in :mod:`convnet.ops`, their tests, and
one line in the registry :data:`convnet.layers.LAYERS`.
"""
from __future__ import annotations

import numpy as np

from ..backend import check_float_array, get_array_module, resolve_dtype, to_numpy
from ..errors import ConfigError, ShapeError
from ..ops.geometry import is_int
from .accounting import Footprint, LayerCost
from .spelling import Spelling, not_writable


class Layer:
    """Base class: see the module docstring for the protocol."""

    #: short type name used in summaries ("CONV", "MAXPOOL", ...)
    kind = "LAYER"
    #: the prefix of automatic node names (``conv`` → ``conv1``, ``conv2``); "" = the kind in lower case
    name_prefix = ""
    #: True when ``forward`` takes a list of arrays (a merge: ADD, CONCAT) and ``backward``
    #: returns a list of gradients
    multi_input = False
    #: True when ``backward(dy, need_dx=False)`` can skip the input gradient (the first layer
    #: of a net in training needs only its parameter gradients)
    can_skip_dx = False
    #: True when the parameters do not depend on the input's height and width
    #: (CONV, POOL, RELU, BN, LRN): a built layer then runs on any spatial size
    #: with the same channels — what lets a fully convolutional net slide over
    #: a larger image.  Dense, Flatten and LocallyConnected2D are fixed-size.
    spatially_agnostic = True
    #: True when the layer acts on each value (or each channel) alone, so that a vector ``(D,)``
    #: and a ``1×1×D`` map are the same input to it, with the same parameters (RELU, DROPOUT,
    #: BN): FC→CONV surgery keeps such a layer between converted FC layers
    pointwise = False
    #: True when ``forward`` takes ``inplace=`` (a bool; a list of bools, one per input, for
    #: several inputs) and may then write its output into the input :meth:`inplace_target` names
    inplace = False
    #: True when ``forward`` returns a new array (or an input it was allowed to overwrite)
    #: that the layer keeps no reference to: a sole consumer may overwrite it
    output_private = False
    #: True when ``backward`` returns a new array for the input gradient (not ``dy``, nor
    #: anything the layer keeps): the net may let a ReLU before it overwrite that array
    grad_private = False
    #: True when ``params["w"]`` is a bank of spatial filters ``(kh, kw, C, K)`` that can be
    #: drawn as images (CONV: the trainer pictures the first such layer's)
    image_filters = False
    #: True when ``forward(train=False)`` is ``x · scale + shift`` per channel (the last axis), with
    #: ``inference_affine()`` returning them and ``affine_sources()`` the arrays they come from (BN, AFFINE): a layer with ``absorbs_affine`` before it
    #: can take the map into its weights at inference (:func:`convnet.graph.plan_folds`)
    affine_at_inference = False
    #: True when ``forward_folded(x, affine)`` runs this layer followed by such a map as one (CONV)
    absorbs_affine = False
    #: True when ``forward(..., relu=True)`` applies a ReLU to its output in the same pass and its
    #: ``backward`` then takes the ReLU's output gradient (BN): a ReLU after it runs inside it
    #: (:func:`convnet.graph.plan_relu_fusion`)
    applies_relu = False
    #: True for the plain ReLU, ``max(x, 0)``, which a layer with ``applies_relu`` can run
    is_relu = False
    #: the four flags above promise what ``forward`` and ``backward`` compute: a subclass that
    #: redefines either keeps none of them unless it sets them again (:meth:`__init_subclass__`)
    FUSION_FLAGS = ("affine_at_inference", "absorbs_affine", "applies_relu", "is_relu")

    #: the words that write this layer in the pattern language, the first the one
    #: :meth:`to_pattern` writes (``("POOL", "MAXPOOL")``); () = none (see :mod:`.spelling`)
    pattern_words: tuple[str, ...] = ()
    #: the options its token may carry, in the order an error lists them (``("S", "P", ...)``)
    pattern_options: tuple[str, ...] = ()
    #: whether a size ``F`` or ``FxF`` may follow the word (``CONV3``, ``POOL3x2``)
    pattern_size = False
    #: whether ``-ARG`` may follow the word and size (``FC-10``, ``DROPOUT-0.25``)
    pattern_arg = False

    def __init_subclass__(cls, **kwargs):
        """A subclass that redefines ``forward`` or ``backward`` drops the fusion flags it does not
        set itself: a ``ReLU`` subclass computing something else must not be run by the BN before it."""
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__ or "backward" in cls.__dict__:
            for flag in Layer.FUSION_FLAGS:
                if flag not in cls.__dict__:
                    setattr(cls, flag, False)

    def __init__(self, *, name: str | None = None, dtype=None):
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"Argument `name` must be a string; received {name!r}.")
        self.name = name
        self.dtype = resolve_dtype(dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.input_shape: tuple[int, ...] | None = None
        self.trainable = True
        #: bumped by :meth:`weights_changed` (see the module docstring)
        self.weights_version = 0
        self._cache = None

    # -- shape -----------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def accepts(self, input_shape) -> bool:
        """True when this built layer can run on per-sample ``input_shape`` with its parameters."""
        if not self.built:
            return False
        s = tuple(input_shape)
        if s == tuple(self.input_shape):
            return True
        return (
            self.spatially_agnostic
            and len(s) == 3 == len(self.input_shape)
            and all(isinstance(v, (int, np.integer)) for v in s)
            and s[2] == self.input_shape[2]
        )

    def output_shape(self, input_shape) -> tuple[int, ...]:
        """Per-sample output shape for a per-sample ``input_shape``."""
        return tuple(input_shape)

    def build(self, input_shape, *, rng: np.random.Generator | None = None, xp=None) -> None:
        """Validate the input shape and create parameters as arrays of ``xp`` (default NumPy;
        subclasses extend)."""
        input_shape = tuple(int(s) for s in input_shape)
        self.output_shape(input_shape)  # raises on invalid geometry
        self.input_shape = input_shape

    def to(self, xp) -> None:
        """Move ``params``, ``grads`` and ``state`` to the array module ``xp`` (numpy, cupy);
        the cache is dropped."""
        move = to_numpy if xp is np else xp.asarray
        for arrays in (self.params, self.grads, self.state):
            for key, value in arrays.items():
                arrays[key] = move(value)
        self._cache = None
        self.weights_changed()

    def weights_changed(self) -> None:
        """Say that ``params`` changed (an optimizer step, a load, an edit in place): bumps
        :attr:`weights_version`, so that nothing made from the old values is used again."""
        self.weights_version += 1

    # -- compute ---------------------------------------------------------------
    def forward(self, x, *, train: bool = False, keep_cache: bool = True):
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def backward(self, dy):
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def clear_cache(self) -> None:
        self._cache = None

    def inplace_target(self, free: list[bool]) -> int | None:
        """The input that ``forward(..., inplace=...)`` writes its output into, given ``free``
        (one bool per input: whether the net lets it overwrite that array); None = a new
        array.  An in-place layer with one input writes into it when it may."""
        return 0 if self.inplace and free and free[0] else None

    # -- what the layer says about itself --------------------------------------
    def cost(self, input_shapes, output_shape) -> LayerCost:
        """Per-sample :class:`~convnet.layers.accounting.LayerCost` for per-sample
        ``input_shapes`` (a list) and ``output_shape``.  This default counts the parameters
        the layer holds if built (``b``/``beta``/``bias`` as biases) and no arithmetic."""
        weights = biases = 0
        for key, p in self.params.items():
            if key in ("b", "beta", "bias"):
                biases += int(p.size)
            else:
                weights += int(p.size)
        return LayerCost(weights, biases)

    def footprint(self, input_shapes, output_shape, *, batch: int, itemsize: int, train: bool) -> Footprint:
        """The :class:`~convnet.layers.accounting.Footprint` of a batch of ``batch`` samples of
        per-sample ``input_shapes`` (a list) in ``itemsize``-byte values.  This default keeps its
        input when training (the safe guess) and needs no scratch."""
        return Footprint(keeps_input=train)

    @classmethod
    def pattern_args(cls, spelling: Spelling) -> dict:
        """The constructor's keyword arguments for a token of the pattern language (see
        :mod:`convnet.layers.spelling`); a word alone means the defaults."""
        return {}

    def to_pattern(self) -> str:
        """This layer in the pattern language (``CONV3-64/S2``); ConfigError when it has no spelling."""
        if not self.pattern_words:
            raise not_writable(self.label, f"(type {type(self).__name__}) has no spelling in the pattern language")
        return self.pattern_words[0]

    # -- helpers for subclasses ------------------------------------------------
    @property
    def label(self) -> str:
        return f"{type(self).__name__} {self.name!r}" if self.name else type(self).__name__

    def _check_input(self, x, rank: int | None = None):
        """Validate dtype and per-sample shape of a batch; build on first use."""
        check_float_array(x, "x")
        if rank is not None and x.ndim != rank:
            expected = "(N, H, W, C)" if rank == 4 else "(N, D)" if rank == 2 else f"rank {rank}"
            raise ShapeError(
                f"{self.label}: input `x` must have shape {expected}; received shape {tuple(x.shape)}."
            )
        if x.ndim < 1 or x.shape[0] < 1:
            raise ShapeError(f"{self.label}: input `x` must have a non-empty batch axis; received shape {tuple(x.shape)}.")
        if not self.built:
            self.build(x.shape[1:], xp=get_array_module(x))
        elif not self.accepts(x.shape[1:]):
            raise ShapeError(
                f"{self.label}: input `x` has per-sample shape {tuple(x.shape[1:])}, but the layer was built "
                f"for {self.input_shape}; received x of shape {tuple(x.shape)}."
            )
        return x

    def _take_cache(self):
        if self._cache is None:
            raise ConfigError(
                f"{self.label}: backward() called without a forward(..., keep_cache=True) before it."
            )
        cache, self._cache = self._cache, None
        return cache

    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class NamedParam(tuple):
    """``(name, param, grad)`` as :meth:`Net.named_parameters <convnet.net.Net.named_parameters>`
    yields it — a plain 3-tuple to anyone unpacking it — that also names its ``owner`` layer, whose
    :meth:`Layer.weights_changed` an optimizer calls after updating ``param`` in place."""

    owner = None

    def __new__(cls, name, param, grad, owner=None):
        self = super().__new__(cls, (name, param, grad))
        self.owner = owner
        return self

    def __reduce__(self):  # copies and pickles are plain tuples (the owner is this process's layer)
        return tuple, (tuple(self),)


def he_normal(rng: np.random.Generator, shape, fan_in: int, dtype) -> np.ndarray:
    """He et al. 2015: N(0, 2 / fan_in), for layers followed by ReLU."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def xavier_uniform(rng: np.random.Generator, shape, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    """Glorot & Bengio 2010: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(dtype)


INITS = ("he", "xavier")


def check_filters(filters, groups) -> tuple[int, int]:
    """``(filters, groups)`` of a convolution-like layer: positive integers, filters divisible by groups."""
    if not is_int(filters) or filters < 1:
        raise ConfigError(f"Argument `filters` must be a positive integer; received filters={filters!r}.")
    if not is_int(groups) or groups < 1:
        raise ConfigError(f"Argument `groups` must be a positive integer; received groups={groups!r}.")
    if filters % groups:
        raise ConfigError(f"Argument `filters` ({filters}) must be divisible by `groups` ({groups}).")
    return int(filters), int(groups)


def check_init(init) -> str:
    if init not in INITS:
        raise ConfigError(f"Argument `init` must be one of {INITS}; received init={init!r}.")
    return init


def init_weights(init: str, rng, shape, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    if init == "he":
        return he_normal(rng, shape, fan_in, dtype)
    if init == "xavier":
        return xavier_uniform(rng, shape, fan_in, fan_out, dtype)
    raise ConfigError(f"Argument `init` must be one of {INITS}; received {init!r}.")


def array_module(xp):
    """``xp``, or NumPy for None: the array module a layer creates its parameters with."""
    return np if xp is None else xp


def default_rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(0)
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"Argument `rng` must be a numpy.random.Generator; received {type(rng).__name__}.")
    return rng
