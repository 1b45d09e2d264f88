"""Code written by generators, not by hand: ``direct_conv_avx2.py`` and ``direct_conv_avx512.py`` by :mod:`convnet.ops.kernels.direct_gen`
(``python -m convnet.ops.kernels.direct_gen``; a test checks the file is current)."""
