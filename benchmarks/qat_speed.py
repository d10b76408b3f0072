"""Quantization-aware training step vs float training step, the built-in CNN, batch 128.

QAT: ``toolchain.models.build("cnn", weight_bits=4, act_bits=8)`` (a QuantNet: input
quantizer, conv3x3(16)+BN+ReLU -> maxpool2 -> conv3x3(32)+BN+ReLU -> maxpool2 -> flatten
-> linear, batch norm folded into quantized weights, fake-quantized activations).
Float: the same shapes in plain ``torch.nn`` (Conv2d without bias, BatchNorm2d, ReLU,
MaxPool2d, Linear). A step is forward + cross-entropy on random labels + backward + Adam
step. The two are timed interleaved (one QAT step, one float step, repeated) after a
warm-up, so a load change on a shared machine hits both alike; medians are quoted.

Usage: python benchmarks/qat_speed.py [--batch 128] [--repeat 30] [--warmup 5] [--threads N]
Prints both medians, the thread count and, last, ``ratio qat/float step: X.XX``
(goal: <= 2.0). On a machine shared with other jobs, ``--threads 1`` is the steadier
figure (intra-op threads that wait for a busy core slow both steps erratically).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from toolchain.models import build

INPUT_SHAPE = (1, 28, 28)
CLASSES = 10


def float_cnn() -> nn.Module:
    """The built-in CNN's shapes in plain torch.nn (what a float training run would use)."""
    c, h, w = INPUT_SHAPE
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), CLASSES))


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """One training step of ``model`` on ``(x, y)`` (Adam), as a closure."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def seconds(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    x = torch.rand(args.batch, *INPUT_SHAPE)
    y = torch.randint(0, CLASSES, (args.batch,))
    qat = make_step(build("cnn", input_shape=INPUT_SHAPE, num_classes=CLASSES, weight_bits=4, act_bits=8), x, y)
    flt = make_step(float_cnn(), x, y)
    for _ in range(args.warmup):
        qat()
        flt()
    times_qat, times_float = [], []
    for _ in range(args.repeat):
        times_qat.append(seconds(qat))
        times_float.append(seconds(flt))
    t_qat, t_float = statistics.median(times_qat), statistics.median(times_float)
    print(f"threads: {torch.get_num_threads()}, batch {args.batch}, "
          f"{args.repeat} steps each after {args.warmup} warm-up")
    print(f"qat step (median):   {t_qat * 1e3:.1f} ms")
    print(f"float step (median): {t_float * 1e3:.1f} ms")
    print(f"ratio qat/float step: {t_qat / t_float:.2f}")


if __name__ == "__main__":
    main()
