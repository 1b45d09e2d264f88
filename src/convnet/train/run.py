"""Whole runs, as the command line starts them: train from a config, load a trained net back."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import load as load_data
from ..data.dataset import train_val_split
from ..data.normalize import Normalizer
from ..errors import CheckpointError
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .trainer import LAST, Trainer, load_net_tensors


def train(config: TrainConfig, out_dir, *, resume: bool = False, quiet: bool = False, log=None) -> dict:
    """Load the data, build the net, train, and return the final metrics (also in ``metrics.json``).

    With ``resume=True`` the run continues from ``out_dir/last.safetensors`` exactly where it
    stopped; a checkpoint from a different configuration is refused (CheckpointError).
    """
    train_set, test_set = load_data(config.data)
    train_set, val_set = train_val_split(train_set, val_fraction=config.val_fraction, seed=config.seed)
    trainer = Trainer(config, train=train_set, val=val_set, test=test_set, out_dir=out_dir, quiet=quiet, log=log)
    trainer.check_budget()
    last = Path(out_dir) / LAST
    if resume and not last.exists():
        raise CheckpointError(f"--resume: there is no checkpoint {last} to resume from; run without --resume first.")
    return trainer.fit(resume_from=last if resume else None)


class TrainedNet:
    """A net restored from a checkpoint with what predicting needs: normalisation and class names."""

    def __init__(self, path):
        from .model import build_model_from_description

        self.path = Path(path)
        tensors, meta = load_checkpoint(self.path)
        try:
            self.meta = meta
            self.classes = list(meta["classes"])
            self.input_shape = tuple(meta["input_shape"])
            self.normalizer = Normalizer.from_state_dict(meta["normalization"])
            self.config = TrainConfig.from_dict(meta["config"])
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{self.path} is not a convnet training checkpoint (missing {exc}).") from None
        self.net = build_model_from_description(meta["net"], self.input_shape, len(self.classes))
        self.net.build(self.input_shape)
        load_net_tensors(self.net, tensors, path=self.path)
        self.dtype = np.dtype(self.config.dtype)

    def scores(self, x, batch: int = 256):
        """Class scores ``(N, K)`` for raw images ``(N, H, W, C)`` in the training data's scale
        (a fully convolutional net's ``1×1×K`` map at the training size counts as ``K`` scores)."""
        out = [self.net.predict(self.normalizer(x[i : i + batch]).astype(self.dtype, copy=False)) for i in range(0, len(x), batch)]
        out = np.concatenate(out)
        if out.ndim == 4 and out.shape[1:3] == (1, 1):
            out = out[:, 0, 0]
        return out
