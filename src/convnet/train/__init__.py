"""Training: optimizers, learning-rate schedules, gradient clipping and checkpoints.

See ``docs/training.md``.  The trainer loop (``trainer.py``) builds on these.
"""
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

__all__ = [
    "Optimizer", "SGD", "Momentum", "Nesterov", "Adagrad", "RMSProp", "Adam", "OPTIMIZERS", "make_optimizer",
    "clip_grad_norm", "global_grad_norm",
    "Schedule", "Constant", "StepDecay", "Cosine", "Warmup", "SCHEDULES", "make_schedule",
    "save_checkpoint", "load_checkpoint", "config_hash", "check_config", "checkpoint_path", "latest_checkpoint",
    "remove_stale_temporaries", "atomic_write", "read_safetensors", "write_safetensors",
]
