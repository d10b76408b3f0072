"""IncReg (toolchain/methods/increg.py): eq. 1, per-layer ratios reached by the threshold, channels
removed, export bit-exact through export-fpga, and bad options refused before training."""

import pytest
import torch

import toolchain
from toolchain.data import synthetic
from toolchain.methods import IncReg, MethodConfig, MethodError
from toolchain.methods.increg import punishment
from toolchain.pruning import channel_groups

from tests.test_tc_common import export_fpga_bit_exact, needs_gxx

SHAPE = (1, 8, 8)
FAST = {"increment": 0.05, "prune_lr": 0.02, "max_steps": 2000}


@pytest.fixture(scope="module")
def result():
    torch.manual_seed(0)
    config = MethodConfig(sparsity=0.5, epochs=0.5, pretrain_epochs=1, batch_size=32,
                          options={**FAST, "ratios": "conv1=0.25"})
    return IncReg(config).run(toolchain.build("cnn", input_shape=SHAPE), synthetic(256, shape=SHAPE),
                              synthetic(64, shape=SHAPE, seed=1))


def test_punishment_is_eq1():
    """Eq. 1 by hand for G = 10, R = 0.3 (RG = 3), A = 0.6: A (1 - r / RG) up to RG, then
    -A (r - RG) / (G (1 - R) - 1) down to -A at the top rank."""
    ranks = torch.tensor([0.0, 1.5, 3.0, 4.0, 9.0])
    expected = [0.6, 0.3, 0.0, -0.6 * 1 / 6, -0.6]
    assert punishment(ranks, channels=10, to_prune=3, a=0.6).tolist() == pytest.approx(expected)


def test_increg_reaches_each_ratio_by_the_threshold_and_removes_the_channels(result):
    assert result.details["ratios"] == {"conv1": 0.25, "conv2": 0.5}
    assert {g: (d["kept_before"], d["kept"]) for g, d in result.layers.items()} == {"conv1": (16, 12),
                                                                                     "conv2": (32, 16)}
    assert result.details["forced"] == {"conv1": 0, "conv2": 0}      # every channel fell below 1e-6
    below = [h for h in result.history if h["phase"] == "prune"]
    assert below and all("group" in h for h in below)
    net = result.model
    assert net.layers["conv1"].weight.shape[0] == 12 and net.layers["conv2"].weight.shape[:2] == (16, 12)
    assert [g.channels for g in channel_groups(net)] == [12, 16]
    assert result.sparsity == pytest.approx(1 - 28 / 48)


def test_the_default_increment_is_half_the_weight_decay():
    method = IncReg(MethodConfig(options={"weight_decay": 1e-3}))
    assert method.options.a == 5e-4


@needs_gxx
def test_increg_exports_bit_exact_everywhere(result, tmp_path):
    report = export_fpga_bit_exact(result.model, synthetic(12, shape=SHAPE, seed=2).x, tmp_path)
    assert {r["name"]: r["out_channels"] for r in report["layers"]}["conv1"] == 12


@pytest.mark.parametrize("options, message", [
    ({"ratios": "conv1=1.0"}, "ratio 'conv1=1.0'"),
    ({"ratios": "conv1=-0.1"}, "in [0, 1)"),
    ({"increment": -1}, "increment (A of eq. 1) must be >= 0"),
    ({"weight_decay": -1e-4}, "weight_decay must be >= 0"),
    ({"prune_lr": 0}, "prune_lr must be > 0"),
])
def test_bad_options_are_refused_when_the_method_is_built(options, message):
    with pytest.raises(MethodError) as info:
        IncReg(MethodConfig(options=options))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_groups_in_ratios_are_refused_before_training():
    method = IncReg(MethodConfig(epochs=0, pretrain_epochs=5, options={"ratios": "convX=0.5"}))
    with pytest.raises(MethodError, match="ratios name convX, which are not prunable channel groups"):
        method.run(toolchain.build("cnn", input_shape=SHAPE), synthetic(32, shape=SHAPE), synthetic(8, shape=SHAPE))
