"""Rebuild the embedded default: toolchain/data/fashion_cnn.pt and fashion_sample.npz.

    python3 scripts/make_example.py            # needs: apt-get install -y dataset-fashion-mnist

The checkpoint is the built-in CNN compressed with Zhang et al.'s layerwise channel pruning to
50 % of its prunable channels, 4-bit weights and 8-bit activations, trained on the first
20,000 Fashion-MNIST training images (about 1.5 minutes on 2 cores). The sample is the
first 300 images of the test split (float32 in [0, 1], N x 1 x 28 x 28) with labels.
"""

from pathlib import Path

import numpy as np

from toolchain.compress_cli import main as compress
from toolchain.data import load_dataset

DATA = Path(__file__).resolve().parent.parent / "toolchain" / "data"
ARGS = ["--method", "layerwise", "--data", "fashion-mnist", "--sparsity", "0.5", "--weight-bits", "4",
        "--act-bits", "8", "--epochs", "1", "--pretrain-epochs", "1", "--limit", "20000", "--round-to", "2",
        "--seed", "0"]


def main() -> int:
    test = load_dataset("fashion-mnist", split="test", limit=300)
    np.savez_compressed(DATA / "fashion_sample.npz", x=test.x.numpy().astype(np.float32), y=test.y.numpy().astype(np.int64))
    return compress([*ARGS, "-o", str(DATA / "fashion_cnn.pt"), "--force"])


if __name__ == "__main__":
    raise SystemExit(main())
