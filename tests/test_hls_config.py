"""HlsConfig validation: parts, clock, architecture, reuse factors, top name."""

import pytest

from exporters.errors import FoldlineError
from hls_templates import HlsConfig
from hls_templates.config import part_family
from hls_templates.errors import HlsConfigError


@pytest.mark.parametrize("part", ["xcu250-figd2104-2L-e", "xcvu9p-flga2104-2L-e", "xczu9eg-ffvb1156-2-e",
                                  "xc7z020clg400-1", "xcku115-flvb2104-2-e", "xck26-sfvc784-2LV-c",
                                  "xcvc1902-vsva2197-2MP-e-S", "XCU55C-FSVH2892-2L-E", "xc7a100tcsg324-1"])
def test_known_parts_accepted(part):
    assert HlsConfig(part=part).part == part
    assert part_family(part)


@pytest.mark.parametrize("part", ["", "foo", "xcu250", "u250", "xcz9-ffvb1156-2-e", "xcu250 figd2104-2L-e",
                                  "xcu250--2L", "ep4ce22f17c6", "xcu250-figd2104-2L-e;rm", None, 250])
def test_bad_parts_refused_with_examples(part):
    with pytest.raises(HlsConfigError) as info:
        HlsConfig(part=part)
    message = str(info.value)
    assert "\n" not in message
    assert "xcu250-figd2104-2L-e" in message and "xc7z020clg400-1" in message
    assert isinstance(info.value, FoldlineError)


@pytest.mark.parametrize("clock", [0, -1.0, float("nan"), float("inf"), "5", True])
def test_bad_clock_refused(clock):
    with pytest.raises(HlsConfigError, match="clock period must be a positive number"):
        HlsConfig(clock_ns=clock)


def test_other_fields_validated():
    with pytest.raises(HlsConfigError, match="architecture"):
        HlsConfig(architecture="systolic")
    with pytest.raises(HlsConfigError, match="reuse factor must be a positive integer"):
        HlsConfig(reuse_factor=0)
    with pytest.raises(HlsConfigError, match="reuse factor of layer 'fc1'"):
        HlsConfig(layer_reuse={"fc1": 1.5})
    for top in ("int", "1net", "my-net", "output", ""):
        with pytest.raises(HlsConfigError, match="top function name"):
            HlsConfig(top=top)


def test_reuse_overrides_and_layer_check():
    cfg = HlsConfig(reuse_factor=2, layer_reuse={"conv1": 8})
    assert (cfg.reuse_for("conv1"), cfg.reuse_for("fc2")) == (8, 2)
    cfg.check_layers(["input", "conv1"])
    with pytest.raises(HlsConfigError, match="unknown layer"):
        cfg.check_layers(["input", "conv2"])


def test_auto_architecture():
    assert HlsConfig().resolve_architecture((16,)) == "parallel"
    assert HlsConfig().resolve_architecture((1, 8, 8)) == "dataflow"
    assert HlsConfig(architecture="parallel").resolve_architecture((1, 8, 8)) == "parallel"
