"""The benchmark report says where it ran: CPU model, ISA flags, cores and BLAS kernel (no timing here)."""
from benchmarks import env, report

ZEN3 = "fpu sse sse2 sse4_2 avx fma f16c avx2 bmi2"
SPR = ZEN3 + " avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8"


def test_isa_flags_and_level():
    assert env.isa_flags(ZEN3) == ["sse4_2", "avx", "fma", "f16c", "avx2"]
    assert env.isa_level(env.isa_flags(ZEN3)) == "AVX2 + FMA"
    assert "avx512_vnni" in env.isa_flags(SPR) and env.isa_level(env.isa_flags(SPR)) == "AVX-512 + AMX"
    assert env.isa_level(env.isa_flags("avx512f")) == "AVX-512" and env.isa_level([]) == "unknown"


def test_describe_and_the_report_header_name_the_machine():
    info = env.describe()
    for key in ("cpu", "cpu_family", "isa", "isa_level", "cpu_count", "cores_usable", "blas_kernel"):
        assert key in info
    meta = {"environment": info, "quick": True, "started": "now", "threads": 2, "blas": info["blas_kernel"],
            "roofline_gflops_start": 1.0, "roofline_gflops_end": 1.0, "settings": {"max_repeats": 1, "warmup": 0},
            "duration_s": 0.0}
    header = report.markdown(meta, [], []).splitlines()[2]
    assert header.startswith("- machine: ") and info["isa_level"] in header
    assert f"{info['cores_usable']} cores usable" in header
