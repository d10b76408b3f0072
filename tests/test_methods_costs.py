"""MACs and BOPs of a QuantNet (methods/costs.py)."""

import toolchain
from toolchain.methods.common import keep_count, with_bits
from toolchain.methods.costs import bops, layer_costs, macs
from toolchain.nn import mac_layers
from toolchain.pruning import channel_groups, remove_channels


def test_cnn_macs_and_bops_by_hand():
    net = toolchain.build("cnn", input_shape=(1, 12, 12), weight_bits=4, act_bits=6, input_bits=8)
    by_hand = {
        "conv1": (12 * 12 * 16 * 1 * 9, 4, 8),     # reads the 8-bit network input
        "conv2": (6 * 6 * 32 * 16 * 9, 4, 6),      # after 2x2 max pooling
        "head": (10 * 32 * 3 * 3, 4, 6),
    }
    costs = {c.name: (c.macs, c.weight_bits, c.act_bits) for c in layer_costs(net)}
    assert costs == by_hand
    assert bops(net) == sum(m * w * a for m, w, a in by_hand.values())


def test_masked_channels_cost_what_removed_channels_cost():
    for name in ("cnn", "resnet", "dsconv"):
        net = toolchain.build(name, input_shape=(1, 8, 8))
        for g in channel_groups(net):
            mask = g.mask
            mask[1::2] = 0
            g.set_mask(mask)
        assert [c.macs for c in layer_costs(net)] == [c.macs for c in layer_costs(remove_channels(net))]
        assert bops(net) < bops(toolchain.build(name, input_shape=(1, 8, 8)))


def test_weight_mask_zeros_count_only_in_nonzero_macs():
    net = toolchain.build("mlp", input_shape=(6,), hidden=(4,))
    dense = macs(net)
    for _, layer in mac_layers(net):
        layer.weight_mask[:, 0] = 0
    assert macs(net) == dense
    assert macs(net, nonzero=True) == dense - 4 - 10   # one column of fc1 (4) and head (10)


def test_with_bits_changes_hidden_widths_only():
    net = toolchain.build("cnn", input_shape=(1, 8, 8), weight_bits=8, act_bits=8, output_bits=8)
    net(__import__("torch").rand(4, 1, 8, 8))
    low = with_bits(net, 4, 5)
    assert [c.weight_bits for c in layer_costs(low)] == [4, 4, 4]
    assert [c.act_bits for c in layer_costs(low)] == [8, 5, 5]     # input stays 8 bits
    assert low.layers["head"].act_bits == 8                          # signed output kept
    assert with_bits(net, None, None) is net


def test_keep_count_never_exceeds_the_target_share():
    for channels in (1, 3, 8, 17, 64):
        for s in (0.0, 0.1, 0.5, 0.9):
            for r in (1, 2, 4):
                k = keep_count(channels, s, r)
                assert 1 <= k <= channels
                if channels >= r and (1 - s) * channels >= r:
                    assert k <= (1 - s) * channels + 1e-9 and k % r == 0
