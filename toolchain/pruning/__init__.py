"""Structured pruning support: coupled channel groups, activation statistics, physical removal."""

from toolchain.pruning.activations import ActivationRecorder, channel_l1
from toolchain.pruning.graph import ChannelGroup, channel_groups
from toolchain.pruning.remove import count_parameters, kept_channels, remove_channels

__all__ = ["ActivationRecorder", "ChannelGroup", "channel_groups", "channel_l1", "count_parameters",
           "kept_channels", "remove_channels"]
