"""Concat and nearest upsampling end to end: QAT modules and PTQ of a .pt2 through export-fpga
(PyTorch integer mode, simulator, onnxruntime and C simulation equal element for element), channel
pruning through a concatenation (masked == removed, bit for bit), and one-line refusals."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import toolchain
from exporters import integer_model as im
from exporters.errors import ModelError
from toolchain.export_cli import main
from toolchain.nn import (Flatten, GlobalAvgPool, MaxPool2d, QuantAdd, QuantConcat, QuantConv2d, QuantInput,
                          QuantLinear, QuantNet, Upsample)
from toolchain.ptq import PtqError, load_float_program, quantize_exported
from toolchain.pruning import channel_groups, remove_channels

from tests.test_tc_common import SHAPE, onnxruntime_output, qat, simulate, synthetic_batch, needs_gxx

CLASSES = 10


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    rng = np.random.default_rng(4)
    path = tmp_path_factory.mktemp("cal") / "cal.npz"
    np.savez(path, x=rng.standard_normal((12, *SHAPE), dtype=np.float32), y=rng.integers(0, CLASSES, 12))
    return path


def _all_equal(model, x):
    """PyTorch integer mode == simulator == onnxruntime on every element; returns the integers."""
    integer_model = toolchain.to_integer_model(model)
    q = toolchain.run_integer(integer_model, x).numpy()
    assert np.array_equal(q, simulate(integer_model, x))
    assert np.array_equal(q, onnxruntime_output(integer_model, x).astype(np.int64))
    return q


def _export_and_check(path, out, calibration, samples):
    assert main([str(path), "-o", str(out), "--calibration", str(calibration)]) == 0
    report = json.loads((out / "report.json").read_text())
    for name in ("torch_integer", "onnxruntime", "csim"):
        v = report["verification"][name]
        assert v["samples"] == samples and v["elements"] == samples * CLASSES and v["mismatches"] == 0, (name, v)
        assert not v.get("first_divergence") and not v.get("error")
    ops = {r["op"] for r in report["layers"]}
    assert {"Concat", "Upsample"} <= ops
    return report


@needs_gxx
def test_qat_unet_checkpoint_exports_bit_exact_everywhere(tmp_path, calibration):
    torch.manual_seed(0)
    net = qat(toolchain.build("unet", input_shape=SHAPE), steps=4)
    x = torch.from_numpy(np.load(calibration)["x"])
    assert np.unique(_all_equal(net, x)).size > 10  # the outputs spread: the comparison means something
    toolchain.save(net, tmp_path / "unet.pt")
    _export_and_check(tmp_path / "unet.pt", tmp_path / "out", calibration, len(x))


class FloatUNet(nn.Module):
    """conv -> pool -> conv -> upsample -> concat with the skip -> conv -> pool/flatten -> linear."""

    def __init__(self, mode: str = "nearest", scale=2, dim: int = 1):
        super().__init__()
        mid = 6 if dim == 2 else 8  # along H the channels must agree
        self.enc = nn.Conv2d(1, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.mid = nn.Conv2d(6, mid, 3, padding=1)
        self.dec = nn.Conv2d(6 if dim == 2 else 6 + mid, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6 * (2 if dim == 2 else 1), CLASSES)
        self.mode, self.scale, self.dim = mode, scale, dim

    def forward(self, x):
        e = F.relu(self.bn(self.enc(x)))
        m = F.relu(self.mid(F.max_pool2d(e, 2)))
        u = F.interpolate(m, scale_factor=self.scale, mode=self.mode)
        c = torch.cat([e, u], dim=self.dim)
        return self.fc(torch.flatten(F.max_pool2d(F.relu(self.dec(c)), 2), 1))


class OddUpsample(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 18 * 18, CLASSES)

    def forward(self, x):
        return self.fc(torch.flatten(F.interpolate(self.conv(x), scale_factor=1.5, mode="nearest"), 1))


def _save_program(model, path):
    torch.manual_seed(1)
    model.eval()
    torch.export.save(torch.export.export(model, (torch.rand(2, *SHAPE),)), path)
    return path


@needs_gxx
def test_pt2_unet_quantizes_and_exports_bit_exact_everywhere(tmp_path, calibration):
    torch.manual_seed(2)
    path = _save_program(FloatUNet(), tmp_path / "unet.pt2")
    report = _export_and_check(path, tmp_path / "out", calibration, 12)
    assert report["accuracy"]["float_program_vs_integer_top1_agreement"] >= 0.75
    x = torch.from_numpy(np.load(calibration)["x"])
    q = quantize_exported(load_float_program(path), x)
    assert [type(m).__name__ for m in q.layers.values()][3:6] == ["QuantConv2d", "Upsample", "QuantConcat"]
    _all_equal(q, x)


def test_nearest_exact_and_an_output_size_are_the_same_integer_upsampling(tmp_path):
    x = torch.rand(16, *SHAPE)
    torch.manual_seed(2)
    reference = FloatUNet()
    for variant in (dict(mode="nearest-exact"), dict(scale=(2, 2))):
        model = FloatUNet(**variant)
        model.load_state_dict(reference.state_dict())
        q = quantize_exported(load_float_program(_save_program(model, tmp_path / "m.pt2")), x)
        assert q.layers["upsample_nearest2d" if variant.get("mode") != "nearest-exact"
                        else "_upsample_nearest_exact2d"].scale_factor == (2, 2)


@pytest.mark.parametrize("build, match", [
    (lambda: FloatUNet(dim=2), r"node 'cat' \(cat\): cat along dim 2 .*only along channels \(dim 1\)"),
    (lambda: FloatUNet(mode="bilinear"), r"node 'upsample_bilinear2d' \(upsample_bilinear2d\): bilinear upsampling "
                                         r"is not supported.*mode='nearest' with an integer scale factor"),
    (OddUpsample, r"node 'upsample_nearest2d' \(upsample_nearest2d\): scale factor \[1.5, 1.5\] .*is not an "
                  r"integer; nearest upsampling by an integer factor \(e.g. scale_factor=2\)"),
], ids=["cat-dim2", "bilinear", "factor-1.5"])
def test_unsupported_concat_and_upsampling_are_one_line_and_write_nothing(tmp_path, calibration, capsys, build,
                                                                          match):
    model = build()
    path = _save_program(model, tmp_path / "bad.pt2")
    with pytest.raises(PtqError, match=match):
        quantize_exported(load_float_program(path), torch.rand(4, *SHAPE))
    out = tmp_path / "out"
    assert main([str(path), "-o", str(out), "--calibration", str(calibration), "--hls", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_non_integer_factors_are_refused_by_name():
    with pytest.raises(ModelError, match=r"^Upsample: upsampling factor \[1.5, 1.5\] must be integers >= 1"):
        Upsample(1.5)
    with pytest.raises(ModelError, match=r"^layer 'up': upsampling factor \[2, 0\] must be integers >= 1"):
        im.Upsample("up", "x", (2, 0))
    with pytest.raises(ModelError, match="QuantConcat.*2 or more inputs"):
        QuantNet([("x", QuantInput()), ("c", QuantConv2d(1, 2, 3, padding=1)), ("cat", QuantConcat(), ["c"])],
                 input_shape=SHAPE)


# -- channel pruning through a concatenation ---------------------------------------------------

def _net(layers):
    return QuantNet([("x", QuantInput()), *layers], input_shape=SHAPE, name="joins")


def _conv(cin, cout, relu=True):
    return QuantConv2d(cin, cout, 3, padding=1, bn=True, relu=relu)


def twice_then_flatten():
    """One group feeding the concatenation twice (cut at two offsets), a flatten after it."""
    return _net([("a", _conv(1, 5)), ("b", _conv(5, 3)), ("cat", QuantConcat(), ["a", "b", "a"]),
                 ("pool", MaxPool2d(4)), ("flat", Flatten()),
                 ("head", QuantLinear(13 * 9, CLASSES, signed_output=True))])


def concat_into_residual():
    """A concatenation added to another one with the same boundaries: the add merges groups segment by
    segment (a with c, b with d), and an upsampled branch."""
    return _net([("a", _conv(1, 4)), ("b", _conv(4, 3)), ("cat1", QuantConcat(), ["a", "b"]),
                 ("c", _conv(7, 4)), ("pool", MaxPool2d(2)), ("d0", _conv(4, 3)), ("d", Upsample(2)),
                 ("cat2", QuantConcat(), ["c", "d"]), ("add", QuantAdd(relu=True), ["cat1", "cat2"]),
                 ("e", _conv(7, 4)), ("gap", GlobalAvgPool()), ("head", QuantLinear(4, CLASSES, signed_output=True))])


def _groups(model):
    return {g.name: g for g in channel_groups(model, include_fixed=True)}


def test_a_group_fed_to_a_concatenation_twice_is_cut_at_both_offsets():
    groups = _groups(twice_then_flatten())
    assert groups["a"].consumers == (("b", 1, 0), ("head", 9, 0), ("head", 9, 8 * 9))
    assert groups["b"].consumers == (("head", 9, 5 * 9),)
    assert groups["a"].prunable and groups["b"].prunable


def test_a_residual_add_of_concatenations_merges_segment_by_segment():
    groups = _groups(concat_into_residual())
    assert set(groups["a"].producers) == {"a", "c"} and set(groups["b"].producers) == {"b", "d0"}
    assert {(c, o) for c, _, o in groups["a"].consumers} == {("b", 0), ("c", 0), ("d0", 0), ("e", 0)}
    assert {(c, o) for c, _, o in groups["b"].consumers} == {("c", 4), ("e", 4)}
    assert "add" not in groups["a"].outputs  # the add's output carries two groups
    assert groups["a"].prunable and groups["b"].prunable


def test_layouts_that_cannot_be_cut_exactly_are_fixed():
    misaligned = _net([("a", _conv(1, 4)), ("b", _conv(4, 3)), ("cat", QuantConcat(), ["a", "b"]),
                       ("c", _conv(1, 7), ["x"]), ("add", QuantAdd(), ["cat", "c"]), ("gap", GlobalAvgPool()),
                       ("head", QuantLinear(7, CLASSES, signed_output=True))])
    depthwise = _net([("a", _conv(1, 4)), ("b", _conv(4, 3)), ("cat", QuantConcat(), ["a", "b"]),
                      ("dw", QuantConv2d(7, 7, 3, padding=1, groups=7)), ("gap", GlobalAvgPool()),
                      ("head", QuantLinear(7, CLASSES, signed_output=True))])
    flat = _net([("a", _conv(1, 2)), ("fa", Flatten()), ("b", _conv(1, 3), ["x"]), ("pb", MaxPool2d(2)),
                 ("fb", Flatten()),
                 ("cat", QuantConcat(), ["fa", "fb"]), ("head", QuantLinear(2 * 144 + 3 * 36, CLASSES,
                                                                            signed_output=True))])
    for model, fixed in ((misaligned, {"a", "b", "c"}), (depthwise, {"a", "b"}), (flat, {"a", "b"})):
        groups = _groups(model)
        assert {n for n, g in groups.items() if not g.prunable} == fixed | {"head"}, model
        assert all(g.prunable for n, g in groups.items() if n not in fixed | {"head"})


@pytest.mark.parametrize("build", [twice_then_flatten, concat_into_residual,
                                   lambda: toolchain.build("unet", input_shape=SHAPE)])
def test_masked_and_removed_models_give_identical_integers_through_concat(build):
    torch.manual_seed(5)
    model = build()

    def prune(net, step):
        if step == 2:  # prune channels of every group feeding a concatenation, at least one kept
            for group in channel_groups(net):
                mask = torch.ones(group.channels)
                mask[torch.randperm(group.channels)[: group.channels // 2]] = 0
                group.set_mask(mask)

    qat(model, steps=4, before_step=prune)
    small = remove_channels(model)
    assert sum(g.channels for g in channel_groups(small)) < sum(g.channels for g in channel_groups(model))
    x, _ = synthetic_batch(32, seed=9)
    masked = toolchain.integer_forward(model, x)
    removed_model = toolchain.to_integer_model(small)
    removed = toolchain.run_integer(removed_model, x)
    assert torch.equal(masked, removed)
    assert np.array_equal(removed.numpy(), simulate(removed_model, x))
    assert np.unique(masked.numpy()).size > 5
