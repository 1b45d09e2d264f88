"""Whole runs, as the command line starts them: train from a config, load a trained net back."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..data import load as load_data
from ..data.dataset import train_val_split
from ..data.normalize import Normalizer
from ..device import resolve_device, select_gpu, to_device
from ..distributed import SingleProcess
from ..errors import CheckpointError, ConfigError, NonFiniteError
from .checkpoint import config_hash, load_checkpoint, resolve_checkpoint, save_checkpoint
from .config import TrainConfig
from ..models import is_onnx, load_onnx
from .model import build_model_from_description
from .runs import resolve_out
from .trainer import LAST, Trainer, first_nonfinite, load_net_tensors


def train(config: TrainConfig, out_dir=None, *, resume: bool = False, overwrite: bool = False,
          quiet: bool = False, log=None, world=None, device=None) -> dict:
    """Load the data, build the net, train, and return the final metrics (also in ``metrics.json``).

    ``out_dir=None`` writes into a new numbered folder under ``runs/`` (``runs/latest`` points at
    it); a folder that already holds a run is refused unless ``resume=True`` (continue exactly
    where it stopped; a checkpoint from a different configuration is refused, CheckpointError) or
    ``overwrite=True`` (replace it).  The returned dict also holds ``out_dir``, the folder used.

    ``world`` (:func:`convnet.distributed.get_world`): the ranks of a data-parallel job; the
    folder is chosen (and a checkpoint read) on rank 0 and sent to the others.
    ``device``: ``"cpu"`` (default) or ``"gpu"`` (docs/gpu.md); checkpoints do not depend on it.
    """
    world = world if world is not None else SingleProcess()
    xp = resolve_device(device if device is not None else "cpu")  # refused before any folder is made
    if world.active:
        select_gpu(xp, world.rank)  # one GPU per rank
    out_dir = world.on_root(lambda: _run_folder(out_dir, resume=resume, overwrite=overwrite), what="run folder")
    last = Path(out_dir) / LAST
    train_set, test_set = load_data(config.data, image_size=config.image_size)
    train_set, val_set = train_val_split(train_set, val_fraction=config.val_fraction, seed=config.seed)
    trainer = Trainer(config, train=train_set, val=val_set, test=test_set, out_dir=out_dir, quiet=quiet, log=log,
                      world=world, device=xp)
    trainer.check_budget()
    metrics = trainer.fit(resume_from=last if resume else None)
    return {**metrics, "out_dir": str(out_dir)}


def _run_folder(out_dir, *, resume: bool, overwrite: bool) -> Path:
    out_dir = resolve_out(out_dir, resume=resume, overwrite=overwrite)
    last = Path(out_dir) / LAST
    if resume and not last.exists():
        raise CheckpointError(f"There is no checkpoint {last} to resume from; train without `resume=True` first.")
    return Path(out_dir)


def save_net_checkpoint(path, net, *, description: dict, classes, normalizer=None, extra_tensors=None,
                        source=None) -> Path:
    """Write a checkpoint of a net that was not trained here (imported weights) with what
    :class:`TrainedNet` reads: the architecture ``description``, the class names, the
    normalisation (default: none), and a configuration that records no data set."""
    c = net.input_shape[-1]
    normalizer = normalizer if normalizer is not None else Normalizer(np.zeros(c), np.ones(c))
    config = TrainConfig(dtype=str(np.dtype(net.layers[0].dtype)))
    tensors = {f"param/{name}": to_numpy(p) for name, p, _ in net.named_parameters(trainable_only=False)}
    tensors.update({f"state/{name}": to_numpy(v) for name, v in net.named_state()})
    tensors.update(extra_tensors or {})
    meta = {
        "config": config.to_dict(), "config_hash": config_hash(config.identity()), "net": description,
        "input_shape": list(net.input_shape), "classes": [str(k) for k in classes],
        "normalization": normalizer.state_dict(), "data": None, "converted_from": str(source),
        "step": 0, "epoch": 0, "step_in_epoch": 0, "history": [], "best": {"val_accuracy": -1.0, "epoch": -1},
        "bad_epochs": 0,
    }
    return save_checkpoint(path, tensors, meta)


class TrainedNet:
    """A net restored from a checkpoint with what predicting needs: normalisation and class names.

    ``device``: where the net runs (``"cpu"``, ``"gpu"``); images are prepared on the host, moved
    there one batch at a time, and the scores come back to the host."""

    def __init__(self, path, *, device=None):
        xp = resolve_device(device if device is not None else "cpu")
        if is_onnx(str(path)):
            self._from_onnx(Path(path))
            self.net.to(xp)
            return
        self.path = resolve_checkpoint(path)
        tensors, meta = load_checkpoint(self.path)
        try:
            self.meta = meta
            self.classes = list(meta["classes"])
            self.input_shape = tuple(meta["input_shape"])
            self.normalizer = Normalizer.from_state_dict(meta["normalization"])
            self.config = TrainConfig.from_dict(meta["config"])
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{self.path} is not a convnet training checkpoint (missing {exc}).") from None
        self.net = build_model_from_description(meta["net"], self.input_shape, len(self.classes), tensors=tensors)
        self.net.build(self.input_shape)
        load_net_tensors(self.net, tensors, path=self.path)
        self.net.to(xp)
        self.dtype = np.dtype(self.config.dtype)
        self.data = meta.get("data", self.config.data)  # None: a converted model, trained elsewhere

    def _from_onnx(self, path: Path) -> None:
        """An ONNX model as a trained net: its own weights, classes ``0 .. K-1``, no normalisation
        (it receives the images as given, in [0, 1]), no default data set."""
        if not path.is_file():
            raise CheckpointError(f"ONNX model {path} does not exist.")
        self.path, self.meta = path, {}
        self.net = load_onnx(path)
        self.input_shape = tuple(self.net.input_shape)
        self.classes = [str(i) for i in range(int(np.prod(self.net.output_shape())))]
        c = self.input_shape[-1]
        self.normalizer = Normalizer(np.zeros(c), np.ones(c))
        self.config, self.data = None, None
        self.dtype = np.dtype(np.float32)

    def scores(self, x, batch: int = 256):
        """Class scores ``(N, K)`` for raw images ``(N, H, W, C)`` in the training data's scale
        (a fully convolutional net's ``1×1×K`` map at the training size counts as ``K`` scores).

        Raises NonFiniteError naming the first layer when any score is NaN or infinite.
        """
        with np.errstate(all="ignore"):  # checked below, with a name
            out = [to_numpy(self.net.predict(to_device(self.prepare(x[i : i + batch]), self.net.xp)))
                   for i in range(0, len(x), batch)]
        out = np.concatenate(out) if out else np.zeros((0, len(self.classes)), self.dtype)
        if not np.all(np.isfinite(out)):
            bad = np.flatnonzero(~np.isfinite(out.reshape(len(out), -1)).all(axis=1))
            where = first_nonfinite(self.net, to_device(self.prepare(x[bad[:1]]), self.net.xp))
            raise NonFiniteError(f"The scores of {len(bad)} of {len(out)} image(s) are NaN or infinite; {where} "
                                 f"The weights of {self.path} or the input are broken.")
        if out.ndim == 4 and out.shape[1:3] == (1, 1):
            out = out[:, 0, 0]
        return out

    def labels_of(self, ds) -> np.ndarray:
        """``ds``'s labels as indices into this net's classes, matched by name.

        Raises ConfigError when the data's classes are not exactly the checkpoint's (a class
        missing, an extra one, or one renamed), naming both sets.
        """
        mine, theirs = list(self.classes), list(ds.classes)
        if mine == theirs:
            return ds.y
        missing, extra = [c for c in mine if c not in theirs], [c for c in theirs if c not in mine]
        if missing or extra:
            detail = "; ".join(p for p in (f"missing {', '.join(missing)}" if missing else "",
                                           f"not in the checkpoint: {', '.join(extra)}" if extra else "") if p)
            raise ConfigError(f"The data {ds.name!r} has the classes ({', '.join(theirs)}) but {self.path} was "
                              f"trained on ({', '.join(mine)}): {detail}; classes are matched by name.")
        index = np.array([mine.index(c) for c in theirs], dtype=np.int64)
        return index[ds.y]

    def prepare(self, x):
        """Raw images in [0, 1] as the net's input: normalised like the training data, in its dtype."""
        return self.normalizer(x).astype(self.dtype, copy=False)
