"""Byte-level mutations of valid seed files, shared by the parsers' fuzz tests."""
from hypothesis import strategies as st

mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 2 ** 16), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 2 ** 16), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 2 ** 16), st.binary(min_size=1, max_size=6)),
    st.tuples(st.just("delete"), st.integers(0, 2 ** 16), st.integers(1, 6)),
    st.tuples(st.just("append"), st.just(0), st.binary(min_size=1, max_size=6)),
)


def mutate(seed: bytes, ops) -> bytes:
    """Apply byte-level mutations (set, truncate, insert, delete, append) at positions taken modulo the length."""
    data = bytearray(seed)
    for op, pos, arg in ops:
        pos = pos % (len(data) + 1)
        if op == "set" and data:
            data[pos % len(data)] = arg
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = arg
        elif op == "delete":
            del data[pos:pos + arg]
        elif op == "append":
            data += arg
    return bytes(data)
