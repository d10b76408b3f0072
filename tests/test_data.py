"""Dataset loading: Fashion-MNIST idx files, synthetic data, .npz files and their errors."""

import gzip
import struct

import numpy as np
import pytest
import torch

from exporters.errors import FoldlineError
from toolchain.data import FASHION_MNIST_DIR, DataError, load_dataset, synthetic


def _fashion_present() -> bool:
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return all((FASHION_MNIST_DIR / n).exists() or (FASHION_MNIST_DIR / f"{n}.gz").exists()
               for n in names)


needs_fashion = pytest.mark.skipif(
    not _fashion_present(),
    reason=f"Fashion-MNIST idx files absent from {FASHION_MNIST_DIR} "
           "(apt-get install dataset-fashion-mnist)")


@needs_fashion
def test_fashion_mnist_reads_real_files():
    test = load_dataset("fashion-mnist", split="test")
    assert test.x.shape == (10000, 1, 28, 28) and test.x.dtype == torch.float32
    assert test.y.shape == (10000,) and test.y.dtype == torch.int64
    assert 0.0 <= float(test.x.min()) and float(test.x.max()) <= 1.0
    # The published test set is balanced: 1,000 images of each of the 10 classes.
    assert test.y.bincount().tolist() == [1000] * 10


@needs_fashion
def test_fashion_mnist_pixels_are_bytes_over_255():
    d = load_dataset("fashion-mnist", split="test", limit=5)
    raw = np.frombuffer(gzip.open(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").read(),
                        np.uint8, offset=16)[: 5 * 784].reshape(5, 1, 28, 28)
    assert torch.equal(d.x, torch.from_numpy(raw.astype(np.float32) / 255.0))


@needs_fashion
def test_fashion_mnist_train_split_and_limit():
    d = load_dataset("fashion-mnist", split="train", limit=100)
    assert len(d) == 100 and d.input_shape == (1, 28, 28)


def test_missing_fashion_mnist_names_the_package(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist") as e:
        load_dataset("fashion-mnist", root=tmp_path)
    assert isinstance(e.value, FoldlineError) and "\n" not in str(e.value)


def test_corrupt_idx_file_is_refused(tmp_path):
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">4I", 0x0803, 2, 28, 28) + b"\0" * 10)  # too few pixels
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">2I", 0x0801, 2) + b"\0\1")
    with pytest.raises(DataError, match="expected 1568 bytes"):
        load_dataset("fashion-mnist", split="test", root=tmp_path)


def test_synthetic_is_deterministic_balanced_and_in_range():
    a, b = load_dataset("synthetic"), load_dataset("synthetic")
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    counts = a.y.bincount()
    assert len(counts) == 10 and int(counts.max() - counts.min()) <= 1
    assert 0.0 <= float(a.x.min()) and float(a.x.max()) <= 1.0
    test = load_dataset("synthetic", split="test")
    assert not torch.equal(a.x[: len(test)], test.x)


def test_synthetic_is_learnable_by_nearest_class_mean():
    train, test = synthetic(500, seed=0), synthetic(200, seed=1)
    means = torch.stack([train.x[train.y == k].mean(0) for k in range(10)]).flatten(1)
    pred = torch.cdist(test.x.flatten(1), means).argmin(1)
    assert float((pred == test.y).float().mean()) > 0.8


def test_npz_round_trip_and_default_split(tmp_path):
    x = np.random.default_rng(0).random((20, 3, 4, 4)).astype(np.float32)
    y = np.arange(20) % 4
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    train, test = load_dataset(path, "train"), load_dataset(path, "test")
    assert (len(train), len(test)) == (18, 2)
    assert torch.equal(torch.cat([train.x, test.x]), torch.from_numpy(x))
    assert torch.equal(load_dataset(path, "all").y, torch.from_numpy(y.astype(np.int64)))


def test_npz_uint8_and_three_dims_and_explicit_test_split(tmp_path):
    x = np.full((4, 5, 5), 255, np.uint8)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.zeros(4, np.int32), x_test=x[:1], y_test=np.ones(1, np.int8))
    train = load_dataset(path, "train")
    assert train.x.shape == (4, 1, 5, 5) and float(train.x.max()) == 1.0
    test = load_dataset(path, "test")
    assert test.y.tolist() == [1] and test.y.dtype == torch.int64


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((4, 1, 2, 2), np.float32)}, "missing array"),
    ({"images": np.zeros(3), "labels": np.zeros(3)}, "missing array"),
    ({"x": np.zeros((4, 4), np.float32), "y": np.zeros(4, np.int64)}, "N x C x H x W"),
    ({"x": np.zeros((4, 1, 2, 2), np.int32), "y": np.zeros(4, np.int64)}, "dtype int32"),
    ({"x": np.zeros((4, 1, 2, 2), np.float32), "y": np.zeros(4, np.float32)}, "integer"),
    ({"x": np.zeros((4, 1, 2, 2), np.float32), "y": np.zeros(3, np.int64)}, "samples"),
    ({"x": np.zeros((4, 1, 2, 2), np.float32), "y": -np.ones(4, np.int64)}, "negative"),
    ({"x": np.full((4, 1, 2, 2), np.nan, np.float32), "y": np.zeros(4, np.int64)}, "NaN"),
])
def test_bad_npz_gives_one_line_error(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message) as e:
        load_dataset(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_missing_or_unreadable_npz(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable"):
        load_dataset(tmp_path / "junk.npz")


@pytest.mark.parametrize("kwargs, message", [
    ({"source": "mnist"}, "unknown dataset"),
    ({"source": "synthetic", "split": "val"}, "unknown split"),
    ({"source": "synthetic", "limit": 0}, "positive"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(DataError, match=message):
        load_dataset(**kwargs)
