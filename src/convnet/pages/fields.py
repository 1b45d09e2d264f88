"""Where each neuron looks: for every node, the input rectangle seen by its output (0, 0) and how
far that rectangle moves per output step — so neuron ``(i, j)`` sees rows
``start_h + i·jump_h`` … ``+ size_h - 1`` (and columns likewise) of the input, padding included
(negative or past the edge where a window reads zeros).

Sizes and jumps are :func:`convnet.analysis.receptive.receptive_fields`'; the start adds each
window layer's top/left padding: ``start_out = start_in - pad_before · jump_in``.
"""
from __future__ import annotations

from ..analysis.costs import GLOBAL, layer_cost
from ..analysis.receptive import receptive_fields
from ..graph import INPUT
from ..ops.geometry import Geometry2D


def neuron_fields(net, shapes) -> dict[str, dict]:
    """``{node: {"size": [h, w], "jump": [h, w], "start": [h, w]}}`` for every node."""
    fields = receptive_fields(net, shapes[INPUT])
    starts = {INPUT: (0, 0)}
    out = {}
    for node in net.nodes:
        ins = [starts[i] for i in node.inputs]
        start = tuple(min(s[a] for s in ins) for a in range(2))
        first = node.inputs[0]
        geometry = getattr(node.layer, "geometry", None)
        if geometry is not None and node.layer.kind != "DECONV" and len(shapes[first]) == 3:
            geom = geometry(shapes[first])  # (a transposed convolution's pads crop its output: no shift)
            if isinstance(geom, Geometry2D):
                (top, _), (left, _) = geom.pads
                jump = fields[first].jump
                start = (start[0] - top * jump[0], start[1] - left * jump[1])
        elif layer_cost(node.layer, [shapes[i] for i in node.inputs], shapes[node.name]).window == GLOBAL:
            start = ins[0]
        starts[node.name] = start
        f = fields[node.name]
        out[node.name] = {"size": list(f.size), "jump": list(f.jump), "start": list(start)}
    return out
