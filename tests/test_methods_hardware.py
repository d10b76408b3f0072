"""The hardware seam (QuantNet -> integer model -> estimate) and pruning to budgets, unit by unit."""

import numpy as np
import pytest
import torch

import toolchain
from exporters.errors import FoldlineError
from hls_templates import HlsConfig
from hls_templates.estimate import Estimate, channel_costs, estimate
from toolchain.data import synthetic
from toolchain.export_pipeline import integer_model_of
from toolchain.methods import METHODS, MethodConfig, MethodError
from toolchain.methods.budget import BudgetPruner, check_reachable, select_channels
from toolchain.methods.common import prunable_groups
from toolchain.methods.hardware import (REUSE_CHOICES, BudgetError, HardwareProbe, HardwareTarget, Measurement,
                                        choose_reuse, integer_names, least_area)
from toolchain.nn import QuantConv2d, QuantInput, QuantLinear, QuantNet, QuantReLU, set_quantization
from toolchain.nn.layers import Flatten, MaxPool2d
from toolchain.pruning import ActivationRecorder

SHAPE = (1, 12, 12)
DATA = synthetic(128, shape=SHAPE, classes=4)


def _calibrated(name="cnn", **kw):
    torch.manual_seed(0)
    net = toolchain.build(name, input_shape=SHAPE, num_classes=4, **kw)
    net.train()
    with torch.no_grad():
        net(DATA.x[:64])
    return net


def _mask_every_other(net):
    for group in prunable_groups(net):
        mask = torch.ones(group.channels)
        mask[::2] = 0
        group.set_mask(mask)


def test_the_seam_gives_export_fpgas_estimate_and_leaves_the_network_alone():
    net = _calibrated()
    _mask_every_other(net)
    set_quantization(net, False)  # mid-training: quantizers latent
    before = {k: v.clone() for k, v in net.state_dict().items()}
    target = HardwareTarget(clock_ns=4.0, reuse=2)
    with ActivationRecorder(net, prunable_groups(net)) as recorder:
        m = HardwareProbe(target).measure(net)
    set_quantization(net, True)
    expected = estimate(integer_model_of(net), HlsConfig(clock_ns=4.0, reuse_factor=2))
    assert m.totals == expected.totals and m.estimate.layers == expected.layers
    set_quantization(net, False)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())   # switches, masks, statistics
    assert recorder.importance(prunable_groups(net)[0]).abs().sum() == 0           # the probe's pass was not recorded


def test_savings_map_groups_onto_the_estimators_channels_through_fused_relu_names():
    torch.manual_seed(0)
    net = QuantNet([("x", QuantInput()), ("conv", QuantConv2d(1, 6, 3, padding=1, bn=True)), ("act", QuantReLU()),
                    ("pool", MaxPool2d(2)), ("flat", Flatten()),
                    ("fc", QuantLinear(6 * 6 * 6, 4, signed_output=True))], SHAPE)
    net.train()
    with torch.no_grad():
        net(DATA.x[:32])
    (group,) = prunable_groups(net)
    group.set_mask(torch.tensor([1.0, 0, 1, 1, 0, 1]))
    probe = HardwareProbe(HardwareTarget())
    m = probe.measure(net)
    assert integer_names(net, m.integer_model) == {"conv": "act", "fc": "fc"}
    lut = probe.savings(m, net, [group], "lut")["conv"]
    direct = channel_costs(m.integer_model, HlsConfig(), "lut")["act"]  # 4 alive channels, in order
    assert np.array_equal(lut[[0, 2, 3, 5]], direct) and lut[1] == lut[4] == 0


def test_coupled_producers_add_their_costs():
    net = _calibrated("resnet")
    probe = HardwareProbe(HardwareTarget())
    m = probe.measure(net)
    stem = next(g for g in prunable_groups(net) if len(g.producers) > 1)
    per_layer = channel_costs(m.integer_model, m.config, "dsp")
    names = integer_names(net, m.integer_model)
    expected = sum(per_layer[names[p]] for p in stem.producers)
    assert np.array_equal(probe.savings(m, net, [stem], "dsp")[stem.name], expected)


class FoldingProbe:
    """A stand-in estimator where folding trades area for cycles: per MAC layer ``w / R + R``
    LUTs (fewer multipliers, wider multiplexers: least area at R = sqrt(w)) and ``c * R``
    cycles, the latency the slowest layer's."""

    WEIGHTS, CYCLES = {"conv1": 64, "conv2": 1024, "head": 256}, {"conv1": 9, "conv2": 4, "head": 1}

    def measure(self, net, reuse, integer_model):
        lut = sum(w / reuse[n] + reuse[n] for n, w in self.WEIGHTS.items())
        latency = max(c * reuse[n] for n, c in self.CYCLES.items())
        return Measurement(integer_model, HlsConfig(layer_reuse=reuse),
                           Estimate([], {"lut": lut, "latency_cycles": latency}))


def test_auto_reuse_is_the_lowest_that_fits_the_area_budget():
    model = HardwareProbe(HardwareTarget()).integer_model(_calibrated())
    probe = FoldingProbe()
    assert least_area(probe, model, {"lut": 1}) == {"conv1": 8, "conv2": 32, "head": 16}
    assert choose_reuse(probe, model, {"lut": 10_000}).config.layer_reuse == {"conv1": 1, "conv2": 1, "head": 1}
    limit = {"lut": 300}  # all at 1: 1347 LUT; least area: 112
    chosen = choose_reuse(probe, model, limit)
    reuse = dict(chosen.config.layer_reuse)
    assert chosen.totals["lut"] <= 300 and max(reuse.values()) > 1
    for layer, r in reuse.items():  # one step lower on any layer no longer fits
        if r > 1:
            lower = dict(reuse, **{layer: REUSE_CHOICES[REUSE_CHOICES.index(r) - 1]})
            assert probe.measure(None, lower, model).totals["lut"] > 300
    # the real estimator: the chosen design fits and is as unfolded as the budget allows
    real = HardwareProbe(HardwareTarget(reuse="auto"))
    ones = real.measure(None, dict.fromkeys(reuse, 1), model).totals["lut"]
    assert choose_reuse(real, model, {"lut": ones}).config.layer_reuse == dict.fromkeys(reuse, 1)
    smallest_lut = real.measure(None, least_area(real, model, {"lut": 1}), model).totals["lut"]
    assert not choose_reuse(real, model, {"lut": smallest_lut}).excess({"lut": smallest_lut})


def test_a_budget_below_the_smallest_network_is_refused_with_that_minimum():
    net = _calibrated()
    small_dsp = BudgetPruner(HardwareTarget()).measure(_smallest_calibrated()).totals["dsp"]
    with pytest.raises(BudgetError, match=f"DSP budget 1 is below the {small_dsp} DSP of the smallest legal network"):
        check_reachable(net, DATA, HardwareTarget(dsp=1), round_to=1)
    with pytest.raises(BudgetError, match=r"latency budget 0.001 us is below the [0-9.]+ us"):
        check_reachable(net, DATA, HardwareTarget(latency_us=0.001), round_to=1)
    check_reachable(net, DATA, HardwareTarget(dsp=small_dsp), round_to=1)


def _smallest_calibrated():
    from toolchain.methods.hardware import calibrated_copy, smallest

    return calibrated_copy(smallest(_calibrated()), DATA.x[:256])


@pytest.mark.parametrize("kwargs, message", [
    ({"dsp": -1}, "DSP budget must be a non-negative integer"),
    ({"lut": 2.5}, "LUT budget must be a non-negative integer"),
    ({"latency_us": -3.0}, "latency budget must be a positive number"),
    ({"reuse": 0}, "reuse factor must be an integer >= 1 or 'auto'"),
    ({"part": "xyz"}, "unknown FPGA part"),
])
def test_bad_targets_are_one_line_errors(kwargs, message):
    with pytest.raises(Exception, match=message) as e:
        HardwareTarget(**kwargs)
    assert "\n" not in str(e.value) and isinstance(e.value, FoldlineError)


def test_selection_keeps_multiples_of_round_to_and_at_least_one_block():
    net = _calibrated()
    groups = prunable_groups(net)
    importance = {g.name: torch.arange(g.channels, dtype=torch.float32) + 1 for g in groups}
    picks = {g.name: c for g, c in select_channels(groups, importance, None, 4, lambda name, unit: False)}
    assert {g.name: g.channels - len(picks[g.name]) for g in groups} == {"conv1": 4, "conv2": 4}
    assert picks["conv1"] == list(range(12))  # the least important (lowest importance) go first


def test_budgets_need_a_structured_method_and_replace_the_sparsity_target():
    with pytest.raises(MethodError, match="hardware targets and budgets need a structured"):
        METHODS["iterative-magnitude"](MethodConfig(hardware=HardwareTarget(dsp=10)))
    with pytest.raises(MethodError, match="replaces the sparsity target"):
        METHODS["one-shot"](MethodConfig(sparsity=0.5, hardware=HardwareTarget(dsp=10)))


@pytest.mark.parametrize("name", ["one-shot", "stepwise", "layerwise"])
def test_each_schedule_prunes_to_a_dsp_budget_and_records_the_design(name):
    net = _calibrated()
    dense = HardwareProbe(HardwareTarget()).measure(net).totals["dsp"]
    budget = dense - 10
    cfg = MethodConfig(sparsity=0.0, epochs=0.25, pretrain_epochs=0.25, batch_size=32,
                       hardware=HardwareTarget(dsp=budget), options={"steps_per_group": 3})
    result = METHODS[name](cfg).run(net, DATA, DATA)
    record = result.details["hardware"]
    assert record["met"] and record["budgets"]["dsp"]["estimate"] <= budget
    assert estimate(integer_model_of(result.model), HlsConfig(**record["design"])).totals["dsp"] <= budget
    assert 0 < result.sparsity < 1 and any(h["phase"] == "budget" for h in result.history)
