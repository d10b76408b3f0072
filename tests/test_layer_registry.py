"""Every layer type has exactly one handler in every backend's table, or an explicit refusal
(docs/layers.md, "Adding a layer type"): a new type that misses a registration fails here, not
in a user's export."""

import numpy as np
import pytest

import toolchain.nn as tnn
from exporters import examples
from exporters import integer_model as im
from exporters.errors import ModelError
from exporters.layers import LAYER_TYPES
from exporters.onnx_export import EXPORTERS
from hls_templates.estimate.layers import COSTS
from hls_templates.hls4ml_bridge import REFUSED, SNAP_MULTIPLIERS, STEPS, Hls4mlUnsupportedError, check_hls4ml_exact
from hls_templates.hls4ml_bridge import power_of_two_copy
from hls_templates.kernels import KERNELS
from toolchain.convert import CONVERTERS, FUSED
from toolchain.integer_mode import RUNNERS
from toolchain.nn.mac import _QuantMac
from toolchain.pruning.graph import GROUP_RULES
from toolchain.pruning.remove import REMOVERS

TYPES = set(LAYER_TYPES.values())


def test_layer_types_are_named_by_their_class():
    assert all(cls.__name__ == name for name, cls in LAYER_TYPES.items())
    assert {im.Input, im.Conv, im.Linear, im.MaxPool, im.AvgPool, im.GlobalAvgPool, im.Add, im.Flatten, im.Concat,
            im.Upsample, im.Lookup} <= TYPES


@pytest.mark.parametrize("table", [EXPORTERS, RUNNERS, COSTS], ids=["onnx_export", "integer_mode", "estimator"])
def test_every_layer_type_has_one_handler(table):
    assert set(table) == TYPES


def test_hls_kernels_cover_every_computing_type():
    # the Input is the top function's port, a free view aliases its input's buffer: no kernel
    without_kernel = {cls for cls in TYPES if cls is im.Input or cls.is_free_view}
    assert set(KERNELS) == TYPES - without_kernel
    assert without_kernel == {im.Input, im.Flatten}


def test_hls4ml_bridge_maps_or_refuses_every_type():
    assert set(STEPS) | set(REFUSED) == TYPES and not set(STEPS) & set(REFUSED)
    assert set(SNAP_MULTIPLIERS) == {cls for cls in TYPES if cls.requantizes}


def test_a_refused_type_is_refused_with_its_message():
    b = examples.Builder(np.random.default_rng(0), (2, 4, 4), power_of_two=True)
    x = b.conv(b.layers[0].name, 2)
    x = b.global_avgpool(x)
    b.linear(x, 3, relu=False, signed_out=True)
    model = power_of_two_copy(b.build())
    with pytest.raises(Hls4mlUnsupportedError) as err:
        check_hls4ml_exact(model)
    assert str(err.value) == f"layer 'gap2': {REFUSED[im.GlobalAvgPool]}"


def test_quantnet_tables_cover_every_module_type():
    modules = set(tnn.LAYER_TYPES.values())
    assert set(CONVERTERS) == modules - set(FUSED)  # a ReLU or a clamp is fused into the layer before it
    assert set(FUSED) == {tnn.QuantReLU, tnn.QuantClamp}
    assert set(GROUP_RULES) == modules
    assert set(REMOVERS) == {cls for cls in modules if issubclass(cls, _QuantMac)}  # only they own channels


def test_a_module_without_a_channel_group_rule_is_refused_by_name():
    from torch import nn

    from toolchain.pruning import channel_groups

    net = tnn.QuantNet([("x", tnn.QuantInput()), ("odd", nn.Identity()),
                        ("fc", tnn.QuantLinear(4, 2, signed_output=True))], input_shape=(4,))
    with pytest.raises(ModelError, match=r"layer 'odd' \(Identity\): no channel-group rule"):
        channel_groups(net)
