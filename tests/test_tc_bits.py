"""Per-layer bit widths (toolchain.nn.bits): read and set in place, through checkpoint, integer model,
ONNX metadata, report.json and the HLS C simulation, and fpga-compress --layer-bits."""

import numpy as np
import pytest
import torch

import toolchain
from exporters import integer_model as im
from exporters.onnx_export import to_onnx
from exporters.onnx_import import load_integer_model
from toolchain.compress_cli import main as compress
from toolchain.nn import BitsError, QuantNet, bit_widths, parse_layer_bits, set_bits

from tests.test_tc_common import SHAPE, export_fpga_bit_exact, qat, synthetic_batch, needs_gxx

MIXED = {"conv1": {"weight": 8, "act": 8}, "head": {"weight": 8, "act": 8}}


def _mixed_cnn(seed: int = 0):
    """The issue's example: 8-bit first and last layers, 3-bit middle, after a few QAT steps."""
    torch.manual_seed(seed)
    net = toolchain.build("cnn", input_shape=SHAPE, num_classes=10)
    set_bits(net, MIXED, weight_bits=3, act_bits=3)
    return qat(net, steps=3)


def _integer_widths(model: im.IntegerModel) -> dict:
    """``{layer: {"weight": w, "act": a}}`` as the integer model states them (weights: the MAC
    layer's own ``weight_bits``; act: the bits of the grid the layer writes)."""
    widths = {}
    for layer in model.layers:
        entry = {"weight": layer.weight_bits} if isinstance(layer, im.MacLayer) else {}
        if isinstance(layer, (im.Input, im.MacLayer)):
            entry["act"] = model.grid(layer.name).bits
            widths[layer.name] = entry
    return widths


def test_set_bits_changes_the_quantizers_in_place():
    net = toolchain.build("cnn", input_shape=SHAPE)
    conv2 = net.layers["conv2"]
    quantizers = (conv2.weight_quant, conv2.out_quant)
    set_bits(net, weight_bits=4, act_bits=5)
    assert (conv2.weight_quant, conv2.out_quant) == quantizers            # the same modules, changed
    assert bit_widths(net) == {"quant_in": {"act": 8}, "conv1": {"weight": 4, "act": 5},
                               "conv2": {"weight": 4, "act": 5}, "head": {"weight": 4, "act": 8}}
    spec = {d["name"]: d["args"] for d in net.spec()["layers"]}
    assert (spec["conv2"]["weight_bits"], spec["conv2"]["act_bits"], spec["head"]["act_bits"]) == (4, 5, 8)
    out = net.trace(torch.rand(4, *SHAPE))["conv2"]                         # the grid follows at once
    assert out.bits == 5 and int(out.int_repr().max()) <= 31
    set_bits(net, {"quant_in": {"act": 6}, "head": {"act": 4}})            # input and output only explicitly
    assert net.layers["quant_in"].bits == 6 and net.layers["head"].act_bits == 4


def test_set_bits_equals_building_at_those_bits():
    """The same state at widths set in place or given to the constructor: the same integers."""
    torch.manual_seed(3)
    built = qat(toolchain.build("cnn", input_shape=SHAPE, weight_bits=4, act_bits=3), steps=2)
    changed = toolchain.build("cnn", input_shape=SHAPE)
    changed.load_state_dict(built.state_dict())
    set_bits(changed, weight_bits=4, act_bits=3)
    x, _ = synthetic_batch(16, 9)
    a, b = toolchain.to_integer_model(built.eval()), toolchain.to_integer_model(changed.eval())
    for la, lb in zip(a.layers, b.layers):
        if isinstance(la, im.MacLayer):
            assert np.array_equal(la.weight, lb.weight) and np.array_equal(la.bias, lb.bias)
            assert np.array_equal(la.requant.multiplier, lb.requant.multiplier)
    assert torch.equal(toolchain.run_integer(a, x), toolchain.run_integer(b, x))


@pytest.mark.parametrize("layers, message", [
    ({"conv9": {"weight": 4}}, "layer 'conv9' has no quantizer"),
    ({"pool1": {"act": 4}}, "layer 'pool1' has no quantizer"),
    ({"quant_in": {"weight": 4}}, "layer 'quant_in' has no weight bits"),
    ({"conv1": {"weight": 9}}, "layer 'conv1' weight bits: bit width 9 is outside 2..8"),
    ({"conv1": {"act": 4}, "conv2": {"act": 1}}, "layer 'conv2' act bits: bit width 1 is outside 2..8"),
])
def test_bad_requests_are_one_line_and_change_nothing(layers, message):
    net = toolchain.build("cnn", input_shape=SHAPE)
    before = bit_widths(net)
    with pytest.raises(BitsError) as info:
        set_bits(net, layers)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert bit_widths(net) == before


@pytest.mark.parametrize("text, expected", [
    ("conv1=8/8,head=8/8", MIXED),
    (" conv2 = 3/- , quant_in=6", {"conv2": {"weight": 3}, "quant_in": {"act": 6}}),
])
def test_layer_bits_text(text, expected):
    assert parse_layer_bits(text) == expected


@pytest.mark.parametrize("text, message", [
    ("conv1", "expected LAYER=W/A"), ("conv1=8/8/8", "expected LAYER=W/A"), ("conv1=x/8", "'x' is not a bit"),
    ("conv1=9/8", "weight bit width 9 is outside 2..8"), ("conv1=8/1", "act bit width 1"),
    ("conv1=8/8,conv1=4/4", "given twice"),
])
def test_bad_layer_bits_text(text, message):
    with pytest.raises(BitsError, match=message):
        parse_layer_bits(text)


def test_widths_travel_through_checkpoint_integer_model_and_onnx_metadata(tmp_path):
    net = _mixed_cnn()
    expected = bit_widths(net)
    assert expected["conv2"] == {"weight": 3, "act": 3} and expected["conv1"] == {"weight": 8, "act": 8}
    toolchain.save(net.eval(), tmp_path / "m.pt")
    loaded = toolchain.load(tmp_path / "m.pt")
    assert bit_widths(loaded) == expected
    model = toolchain.to_integer_model(loaded)
    assert _integer_widths(model) == expected
    assert _integer_widths(load_integer_model(to_onnx(model))) == expected             # the ONNX file's metadata


@needs_gxx
def test_mixed_precision_round_trips_checkpoint_onnx_hls_bit_exact(tmp_path):
    net = _mixed_cnn(seed=1).eval()
    report = export_fpga_bit_exact(net, synthetic_batch(12, 5)[0], tmp_path)
    rows = {r["name"]: r for r in report["layers"]}
    # report.json: a layer's weight bits, and the bits of the activation it reads
    assert (rows["conv1"]["weight_bits"], rows["conv1"]["act_bits"]) == (8, 8)
    assert (rows["conv2"]["weight_bits"], rows["conv2"]["act_bits"]) == (3, 8)
    assert (rows["head"]["weight_bits"], rows["head"]["act_bits"]) == (8, 3)


def test_fpga_compress_layer_bits(tmp_path, capsys):
    out = tmp_path / "m.pt"
    code = compress(["--method", "one-shot", "--data", "synthetic", "--limit", "120", "--epochs", "0.5",
                     "--batch-size", "32", "--quiet", "-o", str(out), "--weight-bits", "3", "--act-bits", "3",
                     "--layer-bits", "conv1=8/8,head=8/8", "--option", "steps_per_group=2"])
    stdout = capsys.readouterr().out
    assert code == 0
    widths = bit_widths(toolchain.load(out))
    assert widths["conv1"] == {"weight": 8, "act": 8} and widths["conv2"] == {"weight": 3, "act": 3}
    assert widths["head"] == {"weight": 8, "act": 8}
    assert toolchain.load_metadata(out)["summary"]["layer_bits"] == widths
    assert "bits        quant_in A8, conv1 W8A8, conv2 W3A3, head W8A8" in stdout


@pytest.mark.parametrize("layer_bits, message", [
    ("conv1=8/9", "argument --layer-bits: layer bits 'conv1=8/9': act bit width 9 is outside 2..8"),
    ("convX=4/4", "layer 'convX' has no quantizer to set bits of"),
])
def test_fpga_compress_refuses_bad_layer_bits_before_training(tmp_path, capsys, layer_bits, message):
    out = tmp_path / "m.pt"
    code = compress(["--method", "one-shot", "--data", "synthetic", "--limit", "40", "-o", str(out),
                     "--layer-bits", layer_bits])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err
    assert "pretrain" not in err and not out.exists()


def test_a_net_built_from_a_spec_keeps_per_layer_widths():
    net = _mixed_cnn()
    assert bit_widths(QuantNet.from_spec(net.spec())) == bit_widths(net)
