"""Analytical latency and resource estimate of the Foldline HLS design, fast enough to call
every training epoch, and the hardware-cost rule pruning methods use.

>>> import numpy as np
>>> from exporters import examples
>>> e = estimate(examples.cnn(np.random.default_rng(0)), {"clock_ns": 5.0})
>>> sorted(e.totals)[:4]
['architecture', 'bram', 'clock_ns', 'dsp']
>>> e.layers[1]["name"], e.layers[1]["type"]
('conv1', 'Conv')

Formulas: :mod:`.primitives` (operators, calibrated on real Vivado HLS reports), :mod:`.mac` and
:mod:`.requant_stage` (the kernels' modules from them), :mod:`.layers` (one layer, from the
kernel loops), :mod:`.schedule` (composition), :mod:`.pruning` (cost rule), :mod:`.report` (what
a report says); hls4ml projects: :mod:`.hls4ml_model`, :mod:`.hls4ml_project`. docs/hls.md
"Estimator". None of the numbers is a synthesis result.
"""

from hls_templates.estimate.config import EstimateConfig, EstimateConfigError, resolve_config
from hls_templates.estimate.core import Estimate, estimate
from hls_templates.estimate.pruning import channel_cost, channel_costs, hardware_cost

__all__ = ["Estimate", "EstimateConfig", "EstimateConfigError", "channel_cost", "channel_costs", "estimate",
           "hardware_cost", "resolve_config"]
