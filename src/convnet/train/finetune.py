"""Fine-tuning ("don't be a hero"): start from trained weights, freeze what should not move,
and give the net a new classifier for a new set of classes.

    net = convnet.parse("INPUT[8x8x1] -> ... -> FC-128 -> RELU -> FC-3")   # 3 new classes
    load_weights(net, "runs/latest/best.safetensors")   # every tensor whose name and shape match
    freeze(net, ["conv"])                                # layers whose names start with "conv"

``convnet train --init-from CKPT --freeze conv1,conv2`` does the same from the command line.
"""
from __future__ import annotations

import numpy as np

from ..errors import CheckpointError, ConfigError
from ..layers import Dense
from .checkpoint import load_checkpoint, require_finite, resolve_checkpoint


def load_weights(net, path, *, input_shape=None) -> dict:
    """Copy the checkpoint's parameters (and BatchNorm statistics) into ``net`` by name.

    Tensors whose shape differs — the classifier of a net trained on other classes — are
    left as initialised and reported.  Returns ``{"loaded": [...], "skipped": [...]}``;
    raises CheckpointError when nothing matches.
    """
    if not net.built:
        net.build(input_shape)
    path = resolve_checkpoint(path)
    tensors, _ = load_checkpoint(path)
    require_finite({k: v for k, v in tensors.items() if k.startswith(("param/", "state/"))}, path=path)
    loaded, skipped = [], []
    for kind, items in (("param", [(n, p) for n, p, _ in net.named_parameters(trainable_only=False)]), ("state", list(net.named_state()))):
        for name, arr in items:
            t = tensors.get(f"{kind}/{name}")
            if t is None or t.shape != arr.shape:
                skipped.append(name)
                continue
            arr[...] = t
            loaded.append(name)
    for layer in net.layers:
        layer.weights_changed()
    if not loaded:
        raise CheckpointError(
            f"None of the checkpoint {path}'s tensors match the network's names and shapes; expected names such "
            f"as {next((n for n, _, _ in net.named_parameters()), '?')!r}."
        )
    return {"loaded": loaded, "skipped": skipped}


def freeze(net, prefixes) -> list[str]:
    """Mark every layer whose name starts with one of ``prefixes`` as not trainable (the
    optimizer no longer sees its parameters).  Returns the frozen layer names."""
    if isinstance(prefixes, str):
        prefixes = [p for p in prefixes.split(",") if p]
    frozen = []
    for prefix in prefixes:
        hit = [n.name for n in net.nodes if n.name.startswith(prefix) and n.layer.params]
        if not hit:
            raise ConfigError(
                f"freeze: no layer with parameters has a name starting with {prefix!r}; layers are "
                f"{[n.name for n in net.nodes if n.layer.params]}."
            )
        for name in hit:
            net[name].trainable = False
        frozen += hit
    return sorted(set(frozen), key=[n.name for n in net.nodes].index)


def replace_classifier(net, num_classes: int, *, rng=None) -> str:
    """Swap the last FC layer for a freshly initialised one with ``num_classes`` outputs.
    Returns its name; raises ConfigError when the net does not end in an FC layer."""
    last = next((n for n in reversed(net.nodes) if n.layer.params), None)
    if last is None or not isinstance(last.layer, Dense):
        raise ConfigError(
            f"replace_classifier: the last layer with parameters must be FC (Dense); received "
            f"{type(last.layer).__name__ if last else 'none'}."
        )
    old = last.layer
    net.replace(last.name, Dense(num_classes, use_bias=old.use_bias, init=old.init, dtype=old.dtype))
    net.build(net.input_shape, rng=rng if rng is not None else np.random.default_rng(0))
    return last.name
