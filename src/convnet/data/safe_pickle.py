"""A restricted unpickler for CIFAR-10's python batches, and nothing else.

A pickle is a program: ``pickle.load`` will import and call whatever the file
names (``os.system``, ``builtins.eval`` ...).  CIFAR-10's python batches are
pickled dicts of ``bytes``/``str`` keys, lists of ints and strings, and one
numpy ``uint8`` array, so this loader allows exactly that:

1. a pre-scan with ``pickletools.genops`` checks every opcode against an allow
   list (no ``INST``/``OBJ``/``NEWOBJ``, no persistent ids, no extension
   registry, no out-of-band buffers) and that every length fits in the data;
2. the pure-Python unpickler (its memo is a dict, and it never pre-allocates a
   claimed length) runs with ``find_class`` answering only these names, each
   with OUR stand-in, never the real callable:

   =====================================================  ===========================================
   ``numpy.core.multiarray._reconstruct`` (and ``_core``)  an empty array stub; its state is checked
                                                           (plain numeric dtype, ``prod(shape) *
                                                           itemsize == len(raw bytes)``) and read with
                                                           ``numpy.frombuffer``
   ``numpy.ndarray``                                       a marker (the only type ``_reconstruct``
                                                           accepts)
   ``numpy.dtype``                                         plain numeric dtypes only (no objects,
                                                           records or sub-arrays)
   ``numpy.core.numeric._frombuffer`` (and ``_core``)      the protocol-5 in-band array form
   ``_codecs.encode``                                      ``(str, 'latin1')`` only: how Python 3
                                                           writes ``bytes`` at protocol 2
   =====================================================  ===========================================

Anything else raises SecurityError naming the file and the global it asked
for; a damaged pickle raises DataFormatError.  No code from the file runs.
"""
from __future__ import annotations

import io
import math
import pickle
import pickletools

import numpy as np

from ..errors import DataFormatError, SecurityError

__all__ = ["restricted_loads", "ALLOWED_OPCODES"]

#: opcodes a CIFAR batch needs (containers, scalars, strings, memo, GLOBAL/STACK_GLOBAL + REDUCE/BUILD)
ALLOWED_OPCODES = frozenset("""
    PROTO FRAME STOP MARK POP POP_MARK DUP
    NONE NEWTRUE NEWFALSE INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT
    STRING BINSTRING SHORT_BINSTRING BINBYTES SHORT_BINBYTES BINBYTES8 BYTEARRAY8
    UNICODE BINUNICODE SHORT_BINUNICODE BINUNICODE8
    EMPTY_LIST APPEND APPENDS LIST EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3
    EMPTY_DICT DICT SETITEM SETITEMS EMPTY_SET ADDITEMS FROZENSET
    GET BINGET LONG_BINGET PUT BINPUT LONG_BINPUT MEMOIZE
    GLOBAL STACK_GLOBAL REDUCE BUILD
""".split())

_ALLOWED_DTYPES = {np.dtype(t).str.lstrip("<>|=") for t in
                   ("b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8")}


class _NdarrayMarker:
    """Stands for ``numpy.ndarray`` as the first argument of ``_reconstruct``."""

    __slots__ = ()


_NDARRAY = _NdarrayMarker()


class _Dtype:
    """Stand-in for ``numpy.dtype(spec, align, copy)`` restricted to plain numeric types."""

    __slots__ = ("dtype",)

    def __init__(self, spec, *args):
        if isinstance(spec, bytes):
            spec = spec.decode("ascii", "replace")
        if not isinstance(spec, str) or spec.lstrip("<>|=") not in _ALLOWED_DTYPES:
            raise SecurityError(f"numpy dtype {spec!r:.40} is not a plain numeric type")
        self.dtype = np.dtype(spec)

    def __setstate__(self, state):
        # numpy writes (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "=", b"<", b">", b"|", b"="):
            raise DataFormatError(f"numpy dtype state {state!r:.80} is not understood")
        if any(s is not None for s in state[2:5]):
            raise SecurityError("numpy dtype state declares sub-arrays or fields")
        order = state[1].decode() if isinstance(state[1], bytes) else state[1]
        if order in "<>":
            self.dtype = self.dtype.newbyteorder(order)


def _dtype_of(obj) -> np.dtype:
    if isinstance(obj, _Dtype):
        return obj.dtype
    raise DataFormatError(f"an array's dtype is {type(obj).__name__}, not a numpy dtype")


def _shape_of(obj) -> tuple[int, ...]:
    if not isinstance(obj, tuple) or len(obj) > 32 or not all(type(s) is int and 0 <= s < 2 ** 63 for s in obj):
        raise DataFormatError(f"an array's shape {obj!r:.80} is not a tuple of non-negative integers")
    return obj


def _array_from_bytes(raw, dtype: np.dtype, shape, fortran: bool) -> np.ndarray:
    if isinstance(raw, str):  # Python-2 str read with encoding='latin1'
        raw = raw.encode("latin1")
    if not isinstance(raw, (bytes, bytearray)):
        raise SecurityError(f"array data is {type(raw).__name__}, not raw bytes (object arrays are refused)")
    need = math.prod(shape) * dtype.itemsize
    if need != len(raw):
        raise DataFormatError(f"array of shape {shape} and dtype {dtype} needs {need} bytes but {len(raw)} are stored")
    arr = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return arr.astype(dtype.newbyteorder("="), copy=True)


class _ArrayStub:
    """What ``_reconstruct(ndarray, (0,), b'b')`` returns; ``BUILD`` fills it via ``__setstate__``."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if self.array is not None:
            raise DataFormatError("an array was built twice")
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise DataFormatError(f"array state {state!r:.80} is not understood")
        if len(state) == 5:
            state = state[1:]
        shape, dtype, fortran, raw = state
        self.array = _array_from_bytes(raw, _dtype_of(dtype), _shape_of(shape), bool(fortran))


class _StandIn:
    """A callable the unpickler may REDUCE with; immutable, and BUILD on it is refused."""

    __slots__ = ("_fn",)

    def __init__(self, fn):
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args):
        return self._fn(*args)

    def __setattr__(self, name, value):
        raise SecurityError("the pickle tries to modify a function")

    def __setstate__(self, state):
        raise SecurityError("the pickle tries to modify a function")


def _reconstruct_fn(cls, shape, dtype):
    if cls is not _NDARRAY:
        raise SecurityError(f"_reconstruct of {type(cls).__name__} (only numpy.ndarray is allowed)")
    return _ArrayStub()


def _frombuffer_fn(buf, dtype, shape, order):
    if order not in ("C", "F"):
        raise DataFormatError(f"array order {order!r:.20} is not 'C' or 'F'")
    stub = _ArrayStub()
    stub.array = _array_from_bytes(buf, _dtype_of(dtype), _shape_of(shape), order == "F")
    return stub


def _codecs_encode_fn(text, encoding="utf-8", *rest):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or rest:
        raise SecurityError(f"_codecs.encode is allowed only as encode(str, 'latin1'); received encoding {encoding!r:.20}")
    return text.encode("latin1")


def _dtype_fn(spec, *args):
    return _Dtype(spec, *args)


_reconstruct = _StandIn(_reconstruct_fn)
_frombuffer = _StandIn(_frombuffer_fn)
_codecs_encode = _StandIn(_codecs_encode_fn)
_dtype = _StandIn(_dtype_fn)


_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _codecs_encode,
}


class _RestrictedUnpickler(pickle._Unpickler):  # the pure-Python one: no pre-allocation, dict memo
    def __init__(self, file, source):
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module, name):
        target = _GLOBALS.get((module, name))
        if target is None:
            raise SecurityError(
                f"{self._source}: the pickle asks for the global {module}.{name}, which a CIFAR-10 batch does not "
                f"need; refusing to load it (it could run code)."
            )
        return target

    def persistent_load(self, pid):
        raise SecurityError(f"{self._source}: the pickle uses persistent ids, which a CIFAR-10 batch does not need.")


def _prescan(data: bytes, source) -> None:
    try:
        for opcode, _arg, _pos in pickletools.genops(io.BytesIO(data)):
            if opcode.name not in ALLOWED_OPCODES:
                raise SecurityError(f"{source}: the pickle uses the opcode {opcode.name}, which a CIFAR-10 batch does "
                                    f"not need; refusing to load it.")
    except SecurityError:
        raise
    except Exception as exc:  # genops raises ValueError for unknown opcodes, short reads, bad text
        raise DataFormatError(f"{source}: not a valid pickle ({type(exc).__name__}: {str(exc)[:100]}).") from None


def _unstub(obj, depth=0):
    if depth > 8:
        return obj
    if isinstance(obj, _ArrayStub):
        if obj.array is None:
            raise DataFormatError("an array was declared but never filled")
        return obj.array
    if isinstance(obj, dict):
        return {k: _unstub(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unstub(v, depth + 1) for v in obj]
    if isinstance(obj, (_Dtype, _NdarrayMarker, _StandIn)):
        raise DataFormatError(f"the pickle's result holds an internal {type(obj).__name__}")
    return obj


def restricted_loads(data: bytes, *, source="<bytes>"):
    """Unpickle ``data`` allowing only containers, scalars, strings and plain numeric numpy arrays.

    Returns the object with numpy arrays in place.  SecurityError for anything
    that would import or call other code; DataFormatError for a damaged pickle.
    """
    _prescan(data, source)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), source).load()
        return _unstub(obj)
    except SecurityError as exc:
        msg = str(exc)
        raise SecurityError(msg if msg.startswith(str(source)) else f"{source}: {msg}.") from None
    except DataFormatError as exc:
        msg = str(exc)
        raise DataFormatError(msg if msg.startswith(str(source)) else f"{source}: {msg}.") from None
    except Exception as exc:  # the unpickler's own errors for damaged data (stack underflow, bad BUILD ...)
        raise DataFormatError(f"{source}: not a valid pickle ({type(exc).__name__}: {str(exc)[:100]}).") from None
