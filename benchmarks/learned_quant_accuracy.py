"""What landing DJPQ's learned quantizers on the integer contract costs in accuracy, measured.

Trains the built-in ``cnn`` on Fashion-MNIST (the first ``--train`` training images), then runs
``djpq`` three ways — learned quantizers alone (``gamma = beta = 0``: nothing pushes widths down or
channels out), the defaults, and the defaults with power-of-two widths — and prints for each, on
the 10,000 test images: the float fake-quant top-1 (the learned quantizers in eval, what training
optimised), the integer top-1 after conversion (``to_integer_model`` + the bit-exact integer mode,
which every export representation matches), their top-1 agreement, the learned widths, the channels
kept and the BOPs. The difference between the first two columns is the conversion's cost: the
integers are the quantizers' own, so it comes only from the requantization multiplier
``M / 2^n`` standing in for ``s_x s_w / s_y`` (docs/integer-contract.md).

    python benchmarks/learned_quant_accuracy.py [--train 20000] [--epochs 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

import toolchain
from toolchain.data import load_dataset
from toolchain.methods import Djpq, MethodConfig
from toolchain.methods.costs import bops
from toolchain.nn import bit_widths
from toolchain.train import evaluate_integer, predict


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=int, default=20000, help="training images used (default 20000)")
    p.add_argument("--epochs", type=float, default=2.0, help="djpq epochs (default 2)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    train = load_dataset("fashion-mnist", "train", args.train)
    test = load_dataset("fashion-mnist", "test")
    runs = {"learned quantizers only (gamma = beta = 0)": {"gamma": 0.0, "beta": 0.0},
            "djpq defaults": {}, "djpq defaults, restrict (bits in {2, 4, 8})": {"restrict": True}}
    print(f"cnn on Fashion-MNIST: {len(train)} training images, 1 pretraining epoch, {args.epochs:g} djpq epochs, "
          f"W8A8 start; test split {len(test)} images")
    for label, options in runs.items():
        torch.manual_seed(0)
        start = time.perf_counter()
        config = MethodConfig(sparsity=0.0, epochs=args.epochs, pretrain_epochs=1.0, options=options)
        result = Djpq(config).run(toolchain.build("cnn"), train, test.subset(1000))
        net = result.model
        fake = predict(net, test).argmax(1)
        integer, pred = evaluate_integer(toolchain.to_integer_model(net), test)
        widths = ", ".join(f"{n} W{b['weight']}A{b['act']}" for n, b in bit_widths(net).items() if "weight" in b)
        kept = ", ".join(f"{g} {d['kept']}/{d['channels']}" for g, d in result.layers.items())
        print(f"\n{label} ({time.perf_counter() - start:.0f} s)\n"
              f"  fake-quant top-1 {100 * float((fake == test.y).float().mean()):.2f} %, integer top-1 "
              f"{100 * integer:.2f} %, agreement {100 * float((fake == pred).float().mean()):.2f} %\n"
              f"  bits {widths}; channels kept {kept}; BOPs {bops(net) / 1e6:.2f} M")


if __name__ == "__main__":
    main()
