"""Post-training quantization of a plain float torch.export program (.pt2) and export-fpga on it."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from toolchain.export_cli import main
from toolchain.nn import AvgPool2d, GlobalAvgPool, MaxPool2d, QuantAdd, QuantConv2d, QuantLinear
from toolchain.ptq import PtqError, input_shape, load_float_program, quantize_exported

SHAPE = (1, 12, 12)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=1, padding=1)
        self.fc = nn.Linear(16 * 6 * 6, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(144, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1),
                                 nn.Linear(32, 4))

    def forward(self, x):
        return self.net(x)


class Res(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.c1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.dw(self.b1(self.c1(x))) + x)
        x = nn.functional.avg_pool2d(x, 2)
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.fc(x.view(x.size(0), -1))


class Sigmoid(Cnn):
    def forward(self, x):
        return self.fc(torch.flatten(torch.sigmoid(self.pool(self.conv1(x))).repeat(1, 2, 1, 1), 1))


def _randomize_bn(model):
    """Non-trivial running statistics, as a trained model has."""
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def _save(model, path, batch=2):
    torch.manual_seed(0)
    model = _randomize_bn(model).eval()
    prog = torch.export.export(model, (torch.rand(batch, *SHAPE),))
    torch.export.save(prog, path)
    return model


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("cal") / "cal.npz"
    np.savez(path, x=rng.random((40, *SHAPE), dtype=np.float32), y=rng.integers(0, 3, 40))
    return path


@pytest.mark.parametrize("cls", [Cnn, Mlp, Res])
def test_pt2_exports_bit_exact_and_close_to_float(cls, tmp_path, calibration, capsys):
    torch.manual_seed(0)
    model = _save(cls(), tmp_path / "m.pt2")
    out = tmp_path / "out"
    assert main([str(tmp_path / "m.pt2"), "-o", str(out), "--calibration", str(calibration), "--hls", "none"]) == 0
    report = json.loads((out / "report.json").read_text())
    for name in ("torch_integer", "onnxruntime"):
        v = report["verification"][name]
        assert v["samples"] == 40 and v["mismatches"] == 0 and v["elements"] > 0
    assert "float program vs fake-quant top-1 agreement" in capsys.readouterr().out
    accuracy = report["accuracy"]
    assert accuracy["samples"] == 40 and accuracy["agreement_checked"] == "float_program_vs_integer_top1_agreement"
    assert report["warnings"] == [] and accuracy["float_program_vs_integer_top1_agreement"] >= 0.9

    # the fake-quant PTQ model follows the float model at 8 bits
    x = torch.from_numpy(np.load(calibration)["x"])
    q = quantize_exported(load_float_program(tmp_path / "m.pt2"), x)
    with torch.no_grad():
        ref, got = model(x), q(x)
    agreement = float((ref.argmax(1) == got.argmax(1)).float().mean())
    rel = float((ref - got).norm() / ref.norm())
    print(f"{cls.__name__}: top-1 agreement {agreement:.3f}, relative error {rel:.4f}")
    assert agreement >= 0.8 and rel < 0.1
    assert q.ptq_info["float_program_vs_fake_quant_top1_agreement"] == pytest.approx(agreement)


def test_mapping_folds_bn_fuses_relu_and_signs_the_output(tmp_path):
    _save(Res(), tmp_path / "m.pt2")
    prog = load_float_program(tmp_path / "m.pt2")
    assert input_shape(prog) == SHAPE
    bn_before = prog.state_dict["b1.running_mean"].clone()
    q = quantize_exported(prog, torch.rand(20, *SHAPE), weight_bits=6, act_bits=7)
    assert torch.equal(prog.state_dict["b1.running_mean"], bn_before)  # calibration leaves BN alone
    kinds = [type(m) for m in q.layers.values()]
    assert kinds.count(QuantConv2d) == 3 and QuantAdd in kinds and AvgPool2d in kinds and GlobalAvgPool in kinds
    mods = dict(q.layers.items())
    assert all(m.bn is None for m in mods.values() if isinstance(m, QuantConv2d))  # folded at build time
    add = next(m for m in mods.values() if isinstance(m, QuantAdd))
    assert add.relu and next(iter(q.layers.values())).bits == 8
    head = list(q.layers.values())[-1]
    assert isinstance(head, QuantLinear) and head.signed_output and head.weight_bits == 6
    dw = [m for m in mods.values() if isinstance(m, QuantConv2d) and m.groups == 8]
    assert len(dw) == 1 and dw[0].act_bits == 7 and not q.training


def test_relu_fuses_through_a_max_pool(tmp_path):
    class PoolThenRelu(Cnn):
        def forward(self, x):
            x = torch.relu(self.pool(self.bn1(self.conv1(x))))
            return self.fc(torch.flatten(torch.relu(self.conv2(x)), 1))

    _save(PoolThenRelu(), tmp_path / "m.pt2")
    q = quantize_exported(load_float_program(tmp_path / "m.pt2"), torch.rand(16, *SHAPE))
    convs = [m for m in q.layers.values() if isinstance(m, QuantConv2d)]
    assert all(c.relu for c in convs) and any(isinstance(m, MaxPool2d) for m in q.layers.values())


def test_unsupported_op_is_one_line_naming_it(tmp_path, calibration, capsys):
    _save(Sigmoid(), tmp_path / "m.pt2")
    assert main([str(tmp_path / "m.pt2"), "-o", str(tmp_path / "out"), "--calibration", str(calibration),
                 "--hls", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sigmoid" in err and "supported:" in err and "conv2d" in err
    assert not (tmp_path / "out").exists()


def test_pt2_needs_calibration_and_bits_need_a_pt2(tmp_path, calibration, capsys):
    _save(Mlp(), tmp_path / "m.pt2")
    assert main([str(tmp_path / "m.pt2"), "-o", str(tmp_path / "out"), "--hls", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--calibration" in err
    assert main(["whatever.pt", "-o", str(tmp_path / "out"), "--weight-bits", "4"]) == 2
    assert "only to a .pt2" in capsys.readouterr().err
    assert main([str(tmp_path / "m.pt2"), "-o", str(tmp_path / "out"), "--calibration", str(calibration),
                 "--act-bits", "9"]) == 2
    assert "9" in capsys.readouterr().err


def test_missing_or_corrupt_pt2(tmp_path, calibration, capsys):
    with pytest.raises(PtqError, match="no such file"):
        load_float_program(tmp_path / "nope.pt2")
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a zip")
    assert main([str(bad), "-o", str(tmp_path / "out"), "--calibration", str(calibration)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable torch.export .pt2 file" in err


@pytest.mark.parametrize("cls", [Cnn, Mlp, Res])
def test_core_aten_program_maps_like_the_training_ir(cls):
    """run_decompositions() gives convolution, addmm(permute(w)), _native_batch_norm_legit_no_training."""
    torch.manual_seed(0)
    model = _randomize_bn(cls()).eval()
    prog = torch.export.export(model, (torch.rand(2, *SHAPE),))
    x = torch.rand(24, *SHAPE)
    a = quantize_exported(prog, x)
    b = quantize_exported(prog.run_decompositions(), x)
    assert [type(m) for m in a.layers.values()] == [type(m) for m in b.layers.values()]
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-5)


class GapThenLinear(nn.Module):
    """Linear on the (N, C, 1, 1) output of a global pool: torch broadcasts over the 1x1, PTQ cannot."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(1, 3)

    def forward(self, x):
        return self.fc(nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1))


@pytest.mark.parametrize("decompose", [False, True])
def test_batch_norm_in_training_mode_is_refused(decompose):
    model = _randomize_bn(Cnn()).train()
    prog = torch.export.export(model, (torch.rand(2, *SHAPE),))
    if decompose:  # core ATen: _native_batch_norm_legit_functional(..., training=True, ...)
        prog = prog.run_decompositions()
    with pytest.raises(PtqError, match=r"^node '\w+' \(\w*batch_norm\w*\): batch norm in training mode .*eval\(\)"):
        quantize_exported(prog, torch.rand(8, *SHAPE))


def test_linear_on_a_4d_tensor_is_refused():
    prog = torch.export.export(GapThenLinear().eval(), (torch.rand(2, *SHAPE),))
    with pytest.raises(PtqError, match=r"^node 'linear' \(linear\): .*\[2, 4, 1, 1\] \(flatten first"):
        quantize_exported(prog, torch.rand(8, *SHAPE))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_the_calibration_data_is_one_line(tmp_path, capsys, bad):
    _save(Mlp(), tmp_path / "m.pt2")
    x = np.random.default_rng(0).random((10, *SHAPE), dtype=np.float32)
    x[7, 0, 3, 3] = bad
    np.savez(tmp_path / "bad.npz", x=x)
    with pytest.raises(PtqError, match=r"^the calibration data holds (NaN|inf) at index \(7, 0, 3, 3\) \(1 NaN"):
        quantize_exported(load_float_program(tmp_path / "m.pt2"), torch.from_numpy(x))
    out = tmp_path / "out"
    assert main([str(tmp_path / "m.pt2"), "-o", str(out), "--calibration", str(tmp_path / "bad.npz"),
                 "--hls", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "NaN" in err
    assert not out.exists()
