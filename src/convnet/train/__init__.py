"""Training: optimizers, learning-rate schedules, gradient clipping and checkpoints.

See ``docs/training.md``.  ``train(config, out_dir)`` runs a whole training job
(``convnet train``); :class:`Trainer` is its loop; ``finetune.py`` loads, freezes and
replaces layers.
"""
import importlib

from .checkpoint import (
    atomic_write,
    check_config,
    checkpoint_path,
    config_hash,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from .clipping import clip_grad_norm, global_grad_norm
from .optimizers import OPTIMIZERS, SGD, Adagrad, Adam, Momentum, Nesterov, Optimizer, RMSProp, make_optimizer
from .safetensors_io import read_safetensors, write_safetensors
from .schedules import SCHEDULES, Constant, Cosine, Schedule, StepDecay, Warmup, make_schedule
from .config import TrainConfig
from .metrics import accuracy, confusion_matrix, top_k_accuracy

#: names whose modules build nets (and so import the model resolver): loaded on first use, so that
#: reading a checkpoint (``convnet.train.checkpoint``) never needs the net-building modules
_LAZY = {"freeze": "finetune", "load_weights": "finetune", "replace_classifier": "finetune",
         "TrainedNet": "run", "train": "run", "Trainer": "trainer"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'convnet.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value

__all__ = [
    "Optimizer", "SGD", "Momentum", "Nesterov", "Adagrad", "RMSProp", "Adam", "OPTIMIZERS", "make_optimizer",
    "clip_grad_norm", "global_grad_norm",
    "Schedule", "Constant", "StepDecay", "Cosine", "Warmup", "SCHEDULES", "make_schedule",
    "save_checkpoint", "load_checkpoint", "config_hash", "check_config", "checkpoint_path", "latest_checkpoint",
    "remove_stale_temporaries", "atomic_write", "read_safetensors", "write_safetensors",
    "TrainConfig", "Trainer", "train", "TrainedNet", "load_weights", "freeze", "replace_classifier",
    "accuracy", "top_k_accuracy", "confusion_matrix",
]
