"""The training loop: epochs of mini-batch gradient descent with evaluation, logs and checkpoints.

One step (the notes' recipe)::

    scores = net.forward(x_batch, train=True)          # forward pass, caches kept
    loss, dscores = loss_forward(scores, y_batch)      # softmax cross-entropy or SVM
    net.backward(dscores)                              # fills every layer's grads
    optimizer.lr = schedule(step); optimizer.step(net.named_parameters())

Before the first step the memory model checks the run fits ``max_memory`` and
refuses with a BudgetError naming the largest batch that does.  A non-finite
loss or gradient stops the run with a NonFiniteError *before* the update, naming
the step and the first layer holding a non-finite value; checkpoints already
written are untouched.

Output folder: ``last.safetensors`` (every epoch, and every ``checkpoint_every``
steps), ``best.safetensors`` (best validation accuracy), ``history.csv`` and
``history.json`` (one row per epoch), ``metrics.json`` (final test metrics),
``curves.png`` and ``filters.png``.

Data parallel (``world`` of N ranks, :mod:`convnet.distributed`): every rank takes its slice
of each global batch (the same position-based order), gradients scaled by the slice's share
of the batch are summed with one Allreduce, BatchNorm statistics are those of the global batch
(unless ``sync_batchnorm`` is False), evaluation is sharded, and only rank 0 prints and writes.
One rank computes exactly what it computed before data parallelism existed.

Device (``device="gpu"``, docs/gpu.md): the net, its gradients and the optimizer's slots live on
the device for the whole run.  Each step makes one host-to-device copy of the batch (images and
labels, prepared on the host), plus one mask per dropout layer (drawn on the host from the run's
seeded generator, so that a run draws the same numbers on either device), and brings back two
numbers (the loss and the correct count) and one vector of verdicts (the gradients' finiteness
check, reduced on the device).  Checkpoints are written
from host copies and loaded onto the net's device, so they do not depend on where they were made.
Evaluation scores come back to the host one batch at a time.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..analysis.memory import MemoryModel, format_bytes
from ..backend import get_array_module, to_numpy
from ..data.augment import Augmenter
from ..data.batching import epoch_order
from ..data.normalize import Normalizer
from ..device import to_device
from ..distributed import GradientBuffer, ShardedGenerator, SingleProcess, broadcast_net, shard_bounds, sync_batchnorm
from ..distributed.batchnorm_sync import average_state
from ..distributed.consistency import check_same, data_fingerprint, shapes_digest
from ..errors import BudgetError, CheckpointError, ConfigError, NonFiniteError
from ..ops.losses import (
    multiclass_svm_backward,
    multiclass_svm_forward,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from ..paths import output_folder
from ..viz import plot_curves, plot_filters
from .checkpoint import BEST, LAST, check_config, config_hash, load_checkpoint, require_finite, save_checkpoint
from .config import TrainConfig
from .finetune import freeze, load_weights
from .metrics import accuracy, confusion_matrix, top_k_accuracy
from .model import build_model, net_description, onnx_bytes
from .optimizers import make_optimizer
from .schedules import make_schedule



def _loss_fns(name):
    if name == "svm":
        return multiclass_svm_forward, multiclass_svm_backward
    return softmax_cross_entropy_forward, softmax_cross_entropy_backward


class Trainer:
    """Train ``config`` on ``train``/``val``/``test`` Datasets, writing into ``out_dir``.

    ``net`` may be given (fine-tuning); otherwise it is built from the config.  ``world``: the
    ranks of a data-parallel job (default: this process alone); only rank 0 prints and writes.
    ``device``: ``"cpu"``, ``"gpu"`` or an array module (default: where ``net`` is, else the CPU);
    the net is moved there once its weights are loaded.
    """

    def __init__(self, config: TrainConfig, *, train, val, test, out_dir, net=None, quiet=False, log=None,
                 world=None, device=None):
        self.config = config
        self.world = world if world is not None else SingleProcess()
        self.train_set, self.val_set, self.test_set = train, val, test
        self.out_dir = Path(out_dir)
        if self.world.is_root:
            self.out_dir = output_folder(self.out_dir, what="The run folder")
        self.quiet = quiet
        self.log = log or (lambda msg: None if quiet else print(msg, file=sys.stderr))
        #: lines shown even when quiet (resuming a run)
        self.note = log or (lambda msg: print(msg, file=sys.stderr))
        if not self.world.is_root:
            self.log = self.note = lambda msg: None
        self.dtype = np.dtype(config.dtype)
        self.classes = list(train.classes)
        self.num_classes = len(self.classes)
        c = train.image_shape[2]
        self.normalizer = Normalizer.fit(train.x) if config.normalize else Normalizer(np.zeros(c), np.ones(c))
        self.augmenter = Augmenter(crop_padding=config.crop_padding, hflip=config.hflip, seed=config.seed)
        self.net = net if net is not None else build_model(config, train.image_shape, self.num_classes)
        if not self.net.built:
            self.net.build(train.image_shape, rng=np.random.default_rng([config.seed, 0, 0]))
        self.description = net_description(config, self.net)
        if "onnx" in self.description:  # the imported net came with its weights (build_model)
            self.onnx_bytes = onnx_bytes(config)
        elif config.init_from:
            result = load_weights(self.net, config.init_from)
            if result["skipped"]:
                self.log(f"fine-tuning: kept the new initialisation of {', '.join(result['skipped'])} "
                         f"(shape differs from {config.init_from})")
        if config.freeze:
            self.log(f"frozen: {', '.join(freeze(self.net, list(config.freeze)))}")
        if device is not None:
            self.net.to(device)
        self.net.check_device()
        self.xp = self.net.xp
        out_shape = self.net.output_shape(train.image_shape)
        if out_shape != (self.num_classes,):
            raise ConfigError(
                f"The network outputs shape {out_shape} but the data has {self.num_classes} classes; "
                f"expected the last layer to be FC-{self.num_classes}."
            )
        self.optimizer = make_optimizer(config.optimizer, **self._optimizer_args())
        self.steps_per_epoch = math.ceil(len(train) / config.batch)
        self.schedule = make_schedule(config.schedule, lr=config.lr, warmup_steps=config.warmup_steps, **self._schedule_args())
        self.loss_forward, self.loss_backward = _loss_fns(config.loss)
        self._check_shards()
        sync_batchnorm(self.net, self.world, enabled=config.sync_batchnorm is not False)
        self.grad_buffer = GradientBuffer(self.net, extras=2) if self.world.active else None
        self.step = 0
        self.epoch = 0
        self.history: list[dict] = []
        self.best = {"val_accuracy": -1.0, "epoch": -1}
        self.bad_epochs = 0

    # -- setup -------------------------------------------------------------------------------
    def _optimizer_args(self) -> dict:
        c = self.config
        kw = {"lr": c.lr, "weight_decay": c.weight_decay}
        if c.optimizer in ("momentum", "nesterov"):
            kw["momentum"] = c.momentum
        if c.clip_norm is not None:
            kw["clip_norm"] = c.clip_norm
        return kw

    def _schedule_args(self) -> dict:
        name = self.config.schedule.lower()
        if name == "cosine":
            return {"total_steps": self.config.epochs * self.steps_per_epoch}
        if name == "step":  # divide by 10 at each third of the run
            return {"every": max(1, self.config.epochs // 3), "steps_per_epoch": self.steps_per_epoch}
        return {}

    def _check_shards(self) -> None:
        """Refuse a rank count that leaves a rank without a sample in some step (the last, shorter
        batch of an epoch included): a rank with nothing to compute cannot join the step."""
        n, b, size = len(self.train_set), self.config.batch, self.world.size
        if size == 1:
            return
        smallest = min(b, n) if n % b == 0 or n < b else min(b, n % b)
        if smallest < size:
            raise ConfigError(
                f"Option `batch` {b} over {n} training samples gives a step of {smallest} sample(s), fewer than the "
                f"{size} ranks; expected every step to have at least one sample per rank (choose a batch whose "
                f"last step, {n} mod batch, is 0 or at least {size}, or fewer ranks).")

    def local_batch(self) -> int:
        """The most samples one rank takes of a global batch (what its memory must hold)."""
        return -(-self.config.batch // self.world.size)

    def prepare(self, x):
        """Normalise a batch of images with the training set's per-channel mean and std."""
        return self.normalizer(x).astype(self.dtype, copy=False)

    def check_budget(self) -> None:
        """Refuse (BudgetError) a run whose training step would not fit ``max_memory`` (default: available RAM)."""
        budget = self.config.max_memory if self.config.max_memory is not None else available_memory()
        model = MemoryModel(self.net, self.train_set.image_shape, optimizer=self.config.optimizer, dtype=self.dtype)
        need = model.estimate(self.local_batch())
        if need.total <= budget:
            return
        shapes = self.net.shapes(self.train_set.image_shape)
        largest = sorted(((int(np.prod(shapes[n.name])), n.name) for n in self.net.nodes), reverse=True)[:3]
        top = ", ".join(f"{name} ({format_bytes(size * self.config.batch * self.dtype.itemsize)})" for size, name in largest)
        try:
            fit = f"the largest batch that fits is {model.max_batch(budget)} (pass `batch` or `max_memory`)"
        except BudgetError:
            fit = (f"not even a batch of 1 fits ({format_bytes(model.estimate(1).total)}); give a larger "
                   f"`max_memory`, or a smaller input or net")
        raise BudgetError(
            f"A training step at batch {self.config.batch} needs about {format_bytes(need.total)} but the budget is "
            f"{format_bytes(budget)}; the largest activations are {top}; {fit}."
        )

    # -- checkpoints -------------------------------------------------------------------------
    def _tensors(self) -> dict:
        t = {f"param/{name}": to_numpy(p) for name, p, _ in self.net.named_parameters(trainable_only=False)}
        t.update({f"state/{name}": to_numpy(v) for name, v in self.net.named_state()})
        t.update({f"optim/{k}": np.asarray(v) for k, v in self.optimizer.state_dict().items()})
        if "onnx" in self.description:
            t[self.description["onnx"]] = np.frombuffer(self.onnx_bytes, dtype=np.uint8)
        return t

    def _meta(self, step_in_epoch: int) -> dict:
        return {
            "config": self.config.to_dict(),
            "config_hash": config_hash(self.config.identity()),
            "net": self.description,
            "input_shape": list(self.train_set.image_shape),
            "classes": self.classes,
            "normalization": self.normalizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "step_in_epoch": step_in_epoch,
            "history": self.history,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "world_size": self.world.size,
        }

    def save(self, name: str = LAST, *, step_in_epoch: int = 0) -> Path:
        """Write checkpoint ``name`` (rank 0; atomically), then wait until it is written (every rank)."""
        path = self.out_dir / name
        if self.config.sync_batchnorm is False:
            average_state(self.net, self.world)
        if self.world.is_root:
            save_checkpoint(path, self._tensors(), self._meta(step_in_epoch))
        self.world.barrier(what=f"checkpoint {name}")
        return path

    def resume(self, path) -> int:
        """Restore everything from a checkpoint (read on rank 0, sent to every rank); returns the
        step within the epoch to continue at."""
        tensors, meta = self.world.on_root(lambda: _load_checked(path, self.config), what="checkpoint")
        load_net_tensors(self.net, tensors, path=path)
        optim = {k[len("optim/"):]: v for k, v in tensors.items() if k.startswith("optim/")}
        self.optimizer.load_state_dict(optim)
        self.step, self.epoch = int(meta["step"]), int(meta["epoch"])
        self.history, self.best, self.bad_epochs = list(meta["history"]), dict(meta["best"]), int(meta["bad_epochs"])
        at = int(meta["step_in_epoch"])
        old_epochs = meta.get("config", {}).get("epochs", self.config.epochs)
        more = f" (extended from {old_epochs} epochs)" if old_epochs != self.config.epochs else ""
        ranks = int(meta.get("world_size", 1))
        if ranks != self.world.size:
            more += f" on {self.world.size} rank(s); it was written by {ranks}"
        self.note(f"resuming run {self.out_dir} at epoch {self.epoch + 1} of {self.config.epochs}{more}, "
                 f"step {self.step} (batch {at} of the epoch)")
        return at

    # -- one step ----------------------------------------------------------------------------
    def _set_step_randomness(self, start: int = 0, total: int | None = None) -> None:
        """Dropout and fractional-pooling generators are re-seeded from (seed, step) each step; a
        rank holding positions ``start ..`` of a global batch of ``total`` draws for the whole
        batch and keeps its rows (:class:`~convnet.distributed.ShardedGenerator`)."""
        i = 0
        for layer in self.net.layers:
            if hasattr(layer, "rng"):
                rng = np.random.default_rng([self.config.seed, self.step, 3, i])
                layer.rng = rng if total is None else ShardedGenerator(rng, start=start, total=total)
                i += 1

    def train_step(self, xb, yb):
        """One forward/backward/update; returns ``(loss, scores)``. Raises NonFiniteError before updating.

        On N ranks each calls it with its slice of the global batch; the loss returned is the
        global batch's."""
        loss, _, scores = self._step(xb, yb, start=0, total=None)
        return loss, scores

    def _step(self, xb, yb, *, start: int, total: int | None):
        """:meth:`train_step` for positions ``start .. start + len(xb)`` of a global batch of
        ``total`` (None: the batch is whole); returns ``(loss, correct, scores)`` of the global batch."""
        world = self.world
        self._set_step_randomness(start, total if world.active else None)
        if self.xp is not np:  # the step's one host-to-device copy: images and labels
            xb, yb = to_device(xb, self.xp), to_device(yb, self.xp)
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite values are checked below, by name
            scores = self.net.forward(xb, train=True)
            loss, cache = self.loss_forward(scores, yb)
        correct = int((scores.argmax(1) == yb).sum())
        if not world.active:
            if not math.isfinite(loss):
                self.net.clear_cache()
                raise NonFiniteError(f"Step {self.step}: the loss is {loss}; {self._first_nonfinite_layer(xb)} "
                                     "No update was applied; the last checkpoint is untouched.")
            self.net.backward(self.loss_backward(1.0, cache), input_grad=False)
        else:  # the gradient of the global mean loss: each rank's share, summed
            total = len(xb) if total is None else total
            with np.errstate(all="ignore"):
                self.net.backward(self.loss_backward(len(xb) / total, cache), input_grad=False)
            loss_sum, correct = self.grad_buffer.reduce(world, (loss * len(xb), correct))
            loss, correct = float(loss_sum) / total, int(round(correct))
            if not math.isfinite(loss):
                raise _everywhere(NonFiniteError(
                    f"Step {self.step}: the loss is {loss}; {self._first_nonfinite_layer(xb, start, total)} "
                    "No update was applied; the last checkpoint is untouched."))
        for name in self._nonfinite_gradients():
            raise _everywhere(NonFiniteError(
                f"Step {self.step}: the gradient of {name} has non-finite values (the loss was {loss:.4g}). "
                "No update was applied; the last checkpoint is untouched."
            ))
        self.optimizer.lr = self.schedule(self.step)
        self.optimizer.step(self.net.named_parameters())
        self.step += 1
        return loss, correct, scores

    def _nonfinite_gradients(self) -> list[str]:
        """The names of the gradients holding NaN or infinity, first one first (usually none).

        On the CPU each gradient is checked in turn; on a device the per-gradient verdicts are
        stacked on the device and read back once (one small transfer, not one per gradient)."""
        named = [(name, g) for name, _, g in self.net.named_parameters() if g is not None]
        if self.xp is np:
            return [name for name, g in named if not np.all(np.isfinite(g))][:1]
        if not named:
            return []
        xp = get_array_module(named[0][1])
        ok = to_numpy(xp.stack([xp.all(xp.isfinite(g)) for _, g in named]))
        return [name for (name, _), good in zip(named, ok) if not good][:1]

    def _first_nonfinite_layer(self, xb, start: int = 0, total: int | None = None) -> str:
        self._set_step_randomness(start, total)
        return first_nonfinite(self.net, xb, train=True)

    # -- evaluation --------------------------------------------------------------------------
    def predict_scores(self, x, batch: int = 256):
        """Scores of every image of ``x``; on N ranks each scores its slice and all get them all."""
        lo, hi = shard_bounds(len(x), self.world.size, self.world.rank)
        mine = x[lo:hi]
        outs = [to_numpy(self.net.predict(to_device(self.prepare(mine[i : i + batch]), self.xp)))
                for i in range(0, len(mine), batch)]
        scores = np.concatenate(outs) if outs else np.zeros((0, self.num_classes), self.dtype)
        if self.world.active:
            scores = np.concatenate(self.world.allgather(scores, what="evaluation scores"))
        return scores

    def evaluate(self, ds) -> dict:
        scores = self.predict_scores(ds.x)
        loss, _ = self.loss_forward(scores.astype(np.float64), ds.y) if len(ds) else (float("nan"), None)
        out = {"loss": loss, "accuracy": accuracy(scores, ds.y)}
        if self.num_classes > 5:
            out["top5_accuracy"] = top_k_accuracy(scores, ds.y, 5)
        out["confusion_matrix"] = confusion_matrix(scores, ds.y, self.num_classes).tolist()
        return out

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, *, resume_from=None) -> dict:
        """Train until ``epochs`` (or ``max_steps``, or early stopping); then :meth:`finish`."""
        c = self.config
        start = self.resume(resume_from) if resume_from is not None else 0
        self._agree()
        while self.epoch < c.epochs:
            completed, loss, acc = self._run_epoch(start)
            start = 0
            if not completed:  # max_steps reached inside the epoch (already checkpointed)
                break
            self._end_epoch(loss, acc)
            if c.max_steps is not None and self.step >= c.max_steps:
                break
            if c.patience is not None and self.bad_epochs >= c.patience:
                self.log(f"early stopping: validation accuracy did not improve for {c.patience} epochs")
                break
        return self.finish()

    def _agree(self) -> None:
        """Before the first step: refuse ranks that differ, then start every rank from rank 0's weights."""
        if not self.world.active:
            return
        config = {k: v for k, v in self.config.identity().items() if k != "init_from"}
        check_same(self.world, {"config": config, "data": data_fingerprint(self.train_set),
                                "input_shape": list(self.train_set.image_shape), "parameters": shapes_digest(self.net),
                                "step": self.step})
        broadcast_net(self.net, self.world)

    def _run_epoch(self, start: int) -> tuple[bool, float, float]:
        """Batches ``start ..`` of the current epoch; returns (epoch completed, mean loss, accuracy)."""
        c = self.config
        order = epoch_order(len(self.train_set), seed=c.seed, epoch=self.epoch)
        bar = _progress(self.steps_per_epoch, f"epoch {self.epoch + 1}/{c.epochs}", self.quiet)
        bar.update(start)
        losses, correct, seen, t0 = [], 0, 0, time.perf_counter()
        try:
            for k in range(start, self.steps_per_epoch):
                idx = order[k * c.batch : (k + 1) * c.batch]
                total = len(idx)
                lo, hi = shard_bounds(total, self.world.size, self.world.rank)
                mine = idx[lo:hi]
                xb = self.prepare(self.augmenter(self.train_set.x[mine], epoch=self.epoch, batch_index=k,
                                                 start=lo, total=total))
                yb = self.train_set.y[mine]
                loss, right, _ = self._step(xb, yb, start=lo, total=total)
                losses.append(loss)
                correct += right
                seen += total
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses):.3f}", acc=f"{correct / seen:.3f}",
                                img_s=f"{seen / (time.perf_counter() - t0):.0f}")
                last_batch = k + 1 == self.steps_per_epoch
                if not last_batch and c.max_steps is not None and self.step >= c.max_steps:
                    self.save(LAST, step_in_epoch=k + 1)
                    return False, float("nan"), float("nan")
                if not last_batch and c.checkpoint_every and self.step % c.checkpoint_every == 0:
                    self.save(LAST, step_in_epoch=k + 1)
        finally:
            bar.close()
        return True, float(np.mean(losses)) if losses else float("nan"), correct / max(seen, 1)

    def _end_epoch(self, train_loss: float, train_acc: float) -> None:
        val = self.evaluate(self.val_set) if self.val_set is not None and len(self.val_set) else None
        row = {"epoch": self.epoch + 1, "step": self.step, "lr": float(self.optimizer.lr),
               "train_loss": float(train_loss), "train_accuracy": float(train_acc)}
        if val:
            row.update(val_loss=float(val["loss"]), val_accuracy=float(val["accuracy"]))
        self.history.append(row)
        self.epoch += 1
        improved = val is not None and val["accuracy"] > self.best["val_accuracy"]
        if improved:
            self.best = {"val_accuracy": float(val["accuracy"]), "epoch": self.epoch}
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        self.save(LAST)
        if improved:
            self.save(BEST)
        if self.world.is_root:
            self._write_history()
        msg = f"epoch {self.epoch}: train loss {train_loss:.4f} acc {train_acc:.4f}"
        if val:
            msg += f", val loss {val['loss']:.4f} acc {val['accuracy']:.4f}"
        self.log(msg)

    def _write_history(self) -> None:
        (self.out_dir / "history.json").write_text(json.dumps(self.history, indent=1))
        keys = sorted({k for row in self.history for k in row}, key=lambda k: (k != "epoch", k))
        with open(self.out_dir / "history.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.history)

    def finish(self) -> dict:
        """Evaluate on the test set with the best weights (when there are any), write metrics and pictures."""
        if self.best["epoch"] > 0:
            best = self.out_dir / BEST
            tensors = self.world.on_root(lambda: load_checkpoint(best)[0] if best.exists() else None, what="best weights")
            if tensors is not None:
                load_net_tensors(self.net, tensors, path=best)
        test = self.evaluate(self.test_set)
        metrics = {
            "test_accuracy": test["accuracy"],
            "test_loss": test["loss"],
            **({"test_top5_accuracy": test["top5_accuracy"]} if "top5_accuracy" in test else {}),
            # None (not a placeholder number) when no epoch was validated
            "best_val_accuracy": self.best["val_accuracy"] if self.best["epoch"] > 0 else None,
            "best_epoch": self.best["epoch"] if self.best["epoch"] > 0 else None,
            "validation": self.val_set is not None and len(self.val_set) > 0,
            "epochs_run": self.epoch,
            "steps": self.step,
            "classes": self.classes,
            "confusion_matrix": test["confusion_matrix"],
        }
        if self.world.is_root:
            (self.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
            self._pictures()
        return metrics

    def _pictures(self) -> None:
        if self.history:
            plot_curves(self.history, self.out_dir / "curves.png", title=self.net.name or "training",
                        best_epoch=self.best["epoch"] if self.best["epoch"] > 0 else None)
        first_conv = next((l for l in self.net.layers if l.image_filters), None)
        if first_conv is not None:
            plot_filters(to_numpy(first_conv.params["w"]), self.out_dir / "filters.png",
                         title=f"{first_conv.name}: {first_conv.params['w'].shape[3]} filters")


def _load_checked(path, config):
    """A checkpoint's ``(tensors, meta)``, refused (CheckpointError) when written with another configuration."""
    tensors, meta = load_checkpoint(path)
    check_config(meta, config.identity(), path=path)
    return tensors, meta


def _everywhere(exc):
    """Mark an error that every rank raises at the same step (after a collective): only rank 0 reports it."""
    exc.collective = True
    return exc


def first_nonfinite(net, x, *, train: bool = False) -> str:
    """Where a non-finite value first appears for input ``x``: a parameter, else a layer's output (a phrase)."""
    def finite(a) -> bool:
        xp = get_array_module(a)
        return bool(xp.all(xp.isfinite(a)))

    for name, p, _ in net.named_parameters(trainable_only=False):
        if not finite(p):
            return f"the first non-finite value is in the parameter {name}."
    found = []

    def observe(name, y):
        if not found and not finite(y):
            found.append(name)

    if not finite(x):
        return "the input itself holds non-finite values."
    with np.errstate(all="ignore"):
        net.forward(x, train=train, keep_cache=False, observer=observe)
    if found:
        return f"the first layer with a non-finite output is {found[0]} ({type(net[found[0]]).__name__})."
    return "every layer's output is finite (the loss itself overflowed)."


def _onto(target, host):
    """A host tensor as an array of ``target``'s module (a copy to the device when it is on one)."""
    xp = get_array_module(target)
    return host if xp is np else xp.asarray(host)


def load_net_tensors(net, tensors: dict, *, path=None) -> None:
    """Copy ``param/*`` and ``state/*`` tensors (host arrays) into a built net, on whatever device
    its arrays are; refuse missing or mis-shaped ones."""
    where = f" in {path}" if path else ""
    require_finite({k: v for k, v in tensors.items() if k.startswith(("param/", "state/"))}, path=path)
    for name, p, _ in net.named_parameters(trainable_only=False):
        key = f"param/{name}"
        if key not in tensors:
            raise CheckpointError(f"The checkpoint{where} has no tensor {key!r}; it was saved from another network.")
        if tensors[key].shape != p.shape:
            raise CheckpointError(
                f"The checkpoint{where} has {key!r} of shape {tensors[key].shape}; the network expects {p.shape}."
            )
        p[...] = _onto(p, tensors[key])
    for name, v in net.named_state():
        key = f"state/{name}"
        if key in tensors:
            v[...] = _onto(v, tensors[key])
    for layer in net.layers:
        layer.weights_changed()


def available_memory() -> int:
    """Bytes of RAM available now (MemAvailable on Linux; total physical memory elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


class _NullBar:
    def update(self, n=1):
        pass

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


def _progress(total: int, desc: str, quiet: bool):
    """A tqdm bar on a terminal; nothing when quiet or when stderr is not a TTY."""
    if quiet or not sys.stderr.isatty() or os.environ.get("CI"):
        return _NullBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
