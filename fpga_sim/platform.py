"""Facts about the host CPU that matter when comparing against onnxruntime.

On x86 CPUs without AVX-VNNI or AVX512-VNNI, onnxruntime's u8 x s8 integer GEMM
kernels (ConvInteger, MatMulInteger) use ``vpmaddubsw``, which adds pairs of
8-bit products in *saturating* 16-bit arithmetic. Their results can then differ
from the exact integers the ONNX specification (and this simulator) computes.

>>> isinstance(cpu_has_vnni(), bool)
True
"""

from __future__ import annotations

import functools

VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})


@functools.cache
def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags listed in ``/proc/cpuinfo`` (empty if unreadable)."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_has_vnni() -> bool:
    """True if this CPU advertises AVX-VNNI or AVX512-VNNI.

    False also when the flags cannot be read (not Linux, not x86): callers
    should then treat onnxruntime's u8 x s8 results as possibly saturated.
    """
    return not VNNI_FLAGS.isdisjoint(cpu_flags())
