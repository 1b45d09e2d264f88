"""The configuration of a training run, and what makes two runs "the same".

Every field that changes the numbers a run computes is part of
:meth:`TrainConfig.identity` and so of the checkpoint's configuration hash:
resuming with a different value is refused.  Fields that only say where to
write or when to stop (``max_steps``, ``patience``) are not.

All randomness of a run is a pure function of ``seed`` and the position in the
run (epoch, step), so resuming needs no saved generator state:

* the order of epoch ``e`` is :func:`convnet.data.batching.epoch_order` of ``(seed, e)``;
* augmentation of batch ``k`` of epoch ``e`` is :class:`convnet.data.augment.Augmenter` of ``(seed, e, k)``;
* dropout (and fractional pooling) layer ``i`` at global step ``t`` draws from
  ``default_rng([seed, t, 3, i])``;
* parameters are initialised from ``default_rng([seed, 0, 0])``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import ConfigError

#: the default network for a data set of (H, W, C) images and K classes
DEFAULT_ARCH = (
    "INPUT[{h}x{w}x{c}] -> [CONV3-32 -> RELU]*2 -> POOL2 -> [CONV3-64 -> RELU]*2 -> POOL2 "
    "-> FC-128 -> RELU -> DROPOUT-0.25 -> FC-{k}"
)

LOSSES = ("softmax", "svm")
#: fields that do not change the computed numbers (excluded from the identity hash)
#: (``epochs`` too: a resumed run may be extended; a schedule over the whole run, such as cosine, then
#: continues along the new length from the current step)
_NOT_IDENTITY = {"max_steps", "patience", "checkpoint_every", "max_memory", "epochs"}


@dataclass
class TrainConfig:
    """Everything ``convnet train`` needs; the CLI flags map one to one onto these fields."""

    data: str = "digits"
    arch: str | None = None
    model: str | None = None
    model_args: dict = field(default_factory=dict)
    epochs: int = 12
    batch: int = 32
    optimizer: str = "adam"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_steps: int = 0
    clip_norm: float | None = None
    loss: str = "softmax"
    seed: int = 0
    val_fraction: float = 0.1
    crop_padding: int = 0
    hflip: bool = False
    normalize: bool = True
    image_size: tuple | None = None
    dtype: str = "float32"
    init_from: str | None = None
    freeze: tuple = ()
    patience: int | None = None
    max_steps: int | None = None
    checkpoint_every: int = 0
    max_memory: int | None = None
    #: data parallel: BatchNorm statistics over the global batch (None or True, the default) or
    #: over each rank's slice (False: faster, and the result depends on the rank count)
    sync_batchnorm: bool | None = None

    def __post_init__(self):
        for name in ("epochs", "batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"Argument `{name}` must be a positive integer; received {v!r}.")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"Argument `lr` must be a positive number; received {self.lr!r}.")
        if self.loss not in LOSSES:
            raise ConfigError(f"Argument `loss` must be one of {LOSSES}; received {self.loss!r}.")
        if self.arch is not None and self.model is not None:
            raise ConfigError("Give either `arch` (a pattern) or `model` (a zoo name), not both.")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"Argument `dtype` must be 'float32' or 'float64'; received {self.dtype!r}.")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ConfigError(f"Argument `max_steps` must be a positive integer; received {self.max_steps!r}.")

        if self.image_size is not None:
            size = self.image_size
            if (not isinstance(size, (tuple, list)) or len(size) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
                raise ConfigError(f"Argument `image_size` must be a pair (H, W) of positive integers; received {size!r}.")
            self.image_size = tuple(size)
        self.freeze = tuple(self.freeze)
        if self.sync_batchnorm not in (None, True, False):
            raise ConfigError(f"Argument `sync_batchnorm` must be True, False or None; received {self.sync_batchnorm!r}.")

    def to_dict(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        """The fields that decide the computed numbers (hashed into checkpoints)."""
        return {k: v for k, v in asdict(self).items() if k not in _NOT_IDENTITY}

    @staticmethod
    def is_identity(name: str) -> bool:
        """Whether the field ``name`` changes the computed numbers (compared on resume)."""
        return name not in _NOT_IDENTITY

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"Unknown configuration fields {unknown}; expected some of {sorted(known)}.")
        return cls(**d)
