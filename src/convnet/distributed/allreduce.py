"""Gradients summed over the ranks through one flat buffer, and parameters sent from rank 0.

Each step every rank packs its gradients (already scaled by its share of the global batch,
so that their sum is the gradient of the global mean loss) into one contiguous float buffer,
with a few extra numbers after them (the step's loss sum and correct count), and one in-place
``Allreduce`` sums it; the sums are unpacked back into the layers' gradient arrays.  One large
message costs one latency and runs at the link's bandwidth (ChainerMN packs this way; Horovod
fuses small tensors into buffers for the same reason).  The buffer is allocated once.

Gradients on a GPU (CuPy arrays) are staged through the host: copied into the host buffer,
reduced by MPI there, and copied back, one device-to-host and one host-to-device copy per
gradient per step.  CUDA-aware MPI (handing MPI device pointers) is not assumed: it depends on how
the MPI library was built, and the host staging works with every MPI (docs/gpu.md).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, to_numpy

__all__ = ["GradientBuffer", "broadcast_net"]


class GradientBuffer:
    """A flat buffer over the trainable parameters' gradients of ``net``, plus ``extras`` numbers.

    ``reduce(world, extras)`` packs every gradient and the ``extras`` values, sums the buffer over
    the ranks with one in-place Allreduce, writes the sums back into the layers' gradients and
    returns the summed extras (in the gradients' dtype: a float32 loss sum keeps 7 digits).
    """

    def __init__(self, net, *, extras: int = 0):
        self.net = net
        self.entries = [(name, p.shape, p.size) for name, p, _ in net.named_parameters()]
        dtypes = {np.dtype(p.dtype) for _, p, _ in net.named_parameters()}
        self.dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)
        self.size = sum(n for _, _, n in self.entries)
        self.extras = int(extras)
        self.buf = np.zeros(self.size + self.extras, dtype=self.dtype)

    @property
    def nbytes(self) -> int:
        """Bytes each rank sends into the Allreduce per step."""
        return self.buf.nbytes

    def reduce(self, world, extras=()) -> np.ndarray:
        params = list(self.net.named_parameters())
        offset = 0
        for (name, shape, n), (_, p, g) in zip(self.entries, params):
            self.buf[offset:offset + n] = 0 if g is None else to_numpy(g).reshape(-1)  # host staging
            offset += n
        self.buf[self.size:] = extras
        world.allreduce_(self.buf, what="gradient allreduce")
        offset = 0
        for (name, shape, n), (_, p, g) in zip(self.entries, params):
            summed = self.buf[offset:offset + n].reshape(shape)
            xp = get_array_module(p)
            if xp is not np:  # back onto the device the gradient lives on
                summed = xp.asarray(summed)
            if g is not None and g.dtype == summed.dtype and getattr(g.flags, "writeable", True) and g.shape == shape:
                g[...] = summed
            else:
                layer_name, key = name.rsplit(".", 1)
                self.net[layer_name].grads[key] = summed.astype(p.dtype)
            offset += n
        return self.buf[self.size:].astype(np.float64)


def broadcast_net(net, world, *, optimizer=None) -> None:
    """Overwrite every parameter and state buffer (running statistics) with rank 0's values, in
    place, so that all ranks start from the same weights whatever each built or loaded."""
    if not world.active:
        return
    arrays = [p for _, p, _ in net.named_parameters(trainable_only=False)] + [v for _, v in net.named_state()]
    for a in arrays:
        xp = get_array_module(a)
        if xp is np and a.flags.c_contiguous and a.flags.writeable:
            world.broadcast_(a, what="parameter broadcast")
        else:  # not contiguous, or on a device: through a host copy
            tmp = np.ascontiguousarray(to_numpy(a))
            world.broadcast_(tmp, what="parameter broadcast")
            a[...] = tmp if xp is np else xp.asarray(tmp)
    for layer in net.layers:
        layer.weights_changed()
