"""The hardware seam's cost per call: training QuantNet -> integer model -> estimate.

On the built-in CNN (1 x 28 x 28, conv 16 - conv 32 - linear, W4A8), its quantizers calibrated
on random inputs and half of each prunable group's channels masked (the state a budgeted
pruning run is in), this prints the median and the best of ``--repeat`` calls each:

* ``measure``: ``HardwareProbe.measure`` — channel removal, conversion, estimate (goal < 20 ms);
* its parts: removal + conversion alone, and the estimate alone;
* ``savings``: per-channel LUT savings of every group on an already converted model;
* ``choose_reuse``: the ``--reuse-factor auto`` search within a LUT budget halfway between
  the design at reuse 1 and the smallest design (many estimates of one converted model).

Usage: python benchmarks/hardware_seam.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import toolchain
from toolchain.methods.common import prunable_groups
from toolchain.methods.hardware import HardwareProbe, HardwareTarget, choose_reuse, least_area


def timings_ms(fn, repeat: int) -> tuple[float, float]:
    """(median, best) milliseconds per call; the best is the figure least disturbed by other
    processes on a shared machine."""
    fn()  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times), 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    toolchain.train.configure_threads()
    net = toolchain.build("cnn", weight_bits=4, act_bits=8)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(32, 1, 28, 28))
    for group in prunable_groups(net):
        mask = torch.ones(group.channels)
        mask[::2] = 0
        group.set_mask(mask)
    probe = HardwareProbe(HardwareTarget())
    m = probe.measure(net)
    groups = prunable_groups(net)
    unfolded = probe.measure(None, dict.fromkeys(("conv1", "conv2", "head"), 1), m.integer_model).totals["lut"]
    smallest = probe.measure(None, least_area(probe, m.integer_model, {"lut": 1}), m.integer_model).totals["lut"]
    budget = {"lut": (unfolded + smallest) // 2}
    rows = [
        ("measure (removal + conversion + estimate)", timings_ms(lambda: probe.measure(net), args.repeat)),
        ("  removal + conversion", timings_ms(lambda: probe.integer_model(net), args.repeat)),
        ("  estimate", timings_ms(lambda: probe.measure(None, None, m.integer_model), args.repeat)),
        ("savings (LUT, every group)", timings_ms(lambda: probe.savings(m, net, groups, "lut"), args.repeat)),
        (f"choose_reuse (LUT <= {budget['lut']:,})",
         timings_ms(lambda: choose_reuse(probe, m.integer_model, budget), max(3, args.repeat // 5))),
    ]
    print(f"built-in CNN 1x28x28 W4A8, half of each group masked; {torch.get_num_threads()} threads; "
          f"{args.repeat} calls each")
    print(f"{'':<44} {'median':>8}    {'best':>8}")
    for label, (median, best) in rows:
        print(f"{label:<44} {median:8.2f} ms {best:8.2f} ms")
    if smallest >= unfolded:
        print("(every layer at reuse 1 is also the smallest design here, so choose_reuse needs one estimate)")
    print(f"goal: measure < 20 ms per call (median) -> {'met' if rows[0][1][0] < 20 else 'MISSED'}")


if __name__ == "__main__":
    main()
