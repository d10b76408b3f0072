"""What one epoch of ``rule-framework`` costs relative to one plain training epoch, measured.

Built-in CNN (1 x 28 x 28), the synthetic blobs (2,048 training samples, batch 64), in one run:

* a plain epoch (best of three): ``Trainer.train_epochs(1)`` of the network with quantizers on
  (QAT, what every other method's fine-tuning epoch is) and with them latent (float);
  every figure is CPU seconds on one thread, so the ratios survive a machine shared with
  other work;
* ``rule-framework`` epochs with candidates ``P0.1,W8A8,W4A8`` under the ``accuracy`` rule and
  under ``latency`` (the hardware estimate per candidate, reuse ``auto`` within a LUT budget):
  each epoch's wall time (snapshot, k trial epochs, k scores, restore) over the plain QAT
  epoch, and over k plain epochs (the overhead of snapshots and scoring).

Usage: python benchmarks/rule_framework_cost.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import time

import torch

import toolchain
from toolchain.data import synthetic
from toolchain.methods import METHODS, MethodConfig
from toolchain.methods.hardware import HardwareProbe, HardwareTarget
from toolchain.nn import set_quantization
from toolchain.train import Trainer


def _net(data):
    torch.manual_seed(0)
    net = toolchain.build("cnn", weight_bits=8, act_bits=8)
    net.train()
    with torch.no_grad():
        net(data.x[:256])
    return net


def plain_epoch(data, quantized: bool) -> float:
    """CPU seconds of one training epoch (best of three)."""
    net = _net(data)
    set_quantization(net, quantized)
    trainer = Trainer(net, data, batch_size=64)
    trainer.train_steps(2)  # warm up
    times = []
    for _ in range(3):
        start = time.process_time()
        trainer.train_epochs(1)
        times.append(time.process_time() - start)
    return min(times)


class EpochClock:
    """CPU time at the start of the first trial and at every "choose" event (an epoch's end)."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def on_phase_start(self, phase: str, total_steps: int) -> None:
        if phase.startswith("epoch 1/") and not self.marks:
            self.marks.append(time.process_time())

    def on_event(self, phase: str, message: str) -> None:
        if phase == "choose":
            self.marks.append(time.process_time())


def framework_epochs(data, val, rule: str, hardware, epochs: int) -> list[tuple[dict, float]]:
    cfg = MethodConfig(sparsity=0.1, epochs=epochs, batch_size=64, weight_bits=4, act_bits=8, hardware=hardware,
                       options={"candidates": "P0.1,W8A8,W4A8", "rule": rule, "eval_samples": 512})
    clock = EpochClock()
    result = METHODS["rule-framework"](cfg).run(_net(data), data, val, callbacks=[clock])
    seconds = [b - a for a, b in zip(clock.marks, clock.marks[1:])]
    return list(zip(result.details["framework"]["epochs"], seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # CPU seconds on one thread: the ratios hold on a loaded machine too
    data, val = synthetic(2048), synthetic(512, seed=1)
    qat, flt = plain_epoch(data, True), plain_epoch(data, False)
    print(f"plain epoch: QAT {qat:.2f} s, float {flt:.2f} s (CPU seconds, 1 thread; {len(data)} samples, batch 64)")
    lut = int(0.8 * HardwareProbe(HardwareTarget()).measure(_net(data)).totals["lut"])
    for rule, hardware in (("accuracy", None), ("latency", HardwareTarget(reuse="auto", lut=lut))):
        for record, seconds in framework_epochs(data, val, rule, hardware, args.epochs):
            k = len(record["offered"])
            print(f"rule {rule:<8} epoch {record['epoch']}: {k} candidates ({', '.join(record['offered'])}) -> "
                  f"{record['step']:<6} {seconds:6.2f} s = {seconds / qat:5.2f} plain QAT epochs "
                  f"({seconds / (k * qat):4.2f} per candidate)")


if __name__ == "__main__":
    main()
