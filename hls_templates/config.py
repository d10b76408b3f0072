"""HLS generation settings: target part, clock, architecture and per-layer parallelism.

>>> cfg = HlsConfig(part="xcvu9p-flga2104-2L-e", clock_ns=4.0, reuse_factor=2, layer_reuse={"fc1": 4})
>>> (cfg.reuse_for("fc1"), cfg.reuse_for("fc2"))
(4, 2)
>>> HlsConfig(clock_ns=0)
Traceback (most recent call last):
...
hls_templates.errors.HlsConfigError: clock period must be a positive number of nanoseconds, got 0
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Mapping

from hls_templates.errors import HlsConfigError

ARCHITECTURES = ("auto", "dataflow", "parallel")

# Xilinx/AMD device families accepted as a part's prefix (the device name before the package).
PART_FAMILIES = {
    "xcu": "Alveo U-series (xcu50, xcu55c, xcu200, xcu250, xcu280)",
    "xcv80": "Alveo V80",
    "xcvu": "Virtex UltraScale/UltraScale+ (xcvu9p, xcvu13p, xcvu095)",
    "xcku": "Kintex UltraScale/UltraScale+ (xcku115, xcku5p)",
    "xcau": "Artix UltraScale+ (xcau15p)",
    "xczu": "Zynq UltraScale+ MPSoC/RFSoC (xczu3eg, xczu9eg, xczu28dr)",
    "xck26": "Kria K26 SOM",
    "xck24": "Kria K24 SOM",
    "xcvc": "Versal AI Core (xcvc1902)",
    "xcve": "Versal AI Edge (xcve2802)",
    "xcvm": "Versal Prime (xcvm1802)",
    "xcvp": "Versal Premium (xcvp1202)",
    "xcvh": "Versal HBM (xcvh1582)",
    "xc7z": "Zynq-7000 (xc7z020)",
    "xc7a": "Artix-7 (xc7a100t)",
    "xc7k": "Kintex-7 (xc7k325t)",
    "xc7v": "Virtex-7 (xc7vx690t)",
    "xc7s": "Spartan-7 (xc7s50)",
    "xa7": "Automotive 7-series (xa7z020)",
    "xazu": "Automotive Zynq UltraScale+ (xazu3eg)",
    "xqzu": "Defense-grade Zynq UltraScale+ (xqzu9eg)",
    "xqku": "Defense-grade Kintex UltraScale+ (xqku5p)",
    "xqvu": "Defense-grade Virtex UltraScale+ (xqvu9p)",
}
PART_EXAMPLES = ("xcu250-figd2104-2L-e", "xcvu9p-flga2104-2L-e", "xczu9eg-ffvb1156-2-e", "xc7z020clg400-1")
# device[package]-speed[-temperature][-revision], e.g. xcu250-figd2104-2L-e or xc7z020clg400-1
_PART_SHAPE = re.compile(r"^x[acq][a-z0-9]+(-[a-z0-9]+){1,4}$", re.IGNORECASE)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CPP_RESERVED = frozenset(
    "alignas alignof and asm auto bool break case catch char class const constexpr continue decltype default "
    "delete do double else enum explicit export extern false float for friend goto if inline int long main "
    "mutable namespace new noexcept not nullptr operator or private protected public register return short "
    "signed sizeof static struct switch template this throw true try typedef typename union unsigned using "
    "virtual void volatile while input output".split()
)


def check_part(part: str) -> str:
    """Accept a Xilinx/AMD part name of a known family; refuse anything else with examples."""
    if not isinstance(part, str) or not _PART_SHAPE.match(part) or not _family(part):
        families = ", ".join(sorted(PART_FAMILIES))
        raise HlsConfigError(
            f"unknown FPGA part {part!r}: expected a Xilinx/AMD part name such as "
            f"{', '.join(PART_EXAMPLES)} (known family prefixes: {families})"
        )
    return part


def _family(part: str) -> str | None:
    lower = part.lower()
    matches = [prefix for prefix in PART_FAMILIES if lower.startswith(prefix)]
    return max(matches, key=len) if matches else None


def part_family(part: str) -> str:
    """The description of a part's family, e.g. ``'Alveo U-series (...)'``."""
    return PART_FAMILIES[_family(check_part(part))]


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HlsConfigError(f"{what} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class HlsConfig:
    """What to generate. ``reuse_factor`` is the default number of clock cycles each layer may
    share one multiplier over (1 = every nonzero weight its own multiplier, one output pixel or
    vector per cycle); ``layer_reuse`` overrides it per layer name.

    ``architecture``: ``"dataflow"`` (hls::stream between layers, line-buffer convolution,
    ``#pragma HLS DATAFLOW``), ``"parallel"`` (arrays, everything partitioned and unrolled) or
    ``"auto"`` (parallel for a model whose input is a vector, dataflow for feature maps).
    """

    part: str = "xcu250-figd2104-2L-e"
    clock_ns: float = 5.0
    architecture: str = "auto"
    reuse_factor: int = 1
    layer_reuse: Mapping[str, int] = field(default_factory=dict)
    top: str = "foldline_top"

    def __post_init__(self) -> None:
        check_part(self.part)
        clock = self.clock_ns
        if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not math.isfinite(clock) or clock <= 0:
            raise HlsConfigError(f"clock period must be a positive number of nanoseconds, got {clock!r}")
        if self.architecture not in ARCHITECTURES:
            raise HlsConfigError(f"architecture must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}")
        _positive_int(self.reuse_factor, "reuse factor")
        for name, value in dict(self.layer_reuse).items():
            _positive_int(value, f"reuse factor of layer {name!r}")
        if not isinstance(self.top, str) or not _IDENTIFIER.match(self.top) or self.top in _CPP_RESERVED:
            raise HlsConfigError(f"top function name must be a C++ identifier (not a keyword), got {self.top!r}")
        object.__setattr__(self, "layer_reuse", dict(self.layer_reuse))

    def reuse_for(self, layer: str) -> int:
        return self.layer_reuse.get(layer, self.reuse_factor)

    def check_layers(self, names) -> None:
        """Refuse per-layer overrides naming layers the model does not have."""
        unknown = sorted(set(self.layer_reuse) - set(names))
        if unknown:
            raise HlsConfigError(f"reuse factor given for unknown layer(s) {', '.join(unknown)}; "
                                 f"the model's layers are {', '.join(names)}")

    def resolve_architecture(self, input_shape: tuple[int, ...]) -> str:
        """The concrete architecture: ``auto`` is parallel for a vector input, dataflow for a map."""
        if self.architecture != "auto":
            return self.architecture
        return "parallel" if len(input_shape) == 1 else "dataflow"
