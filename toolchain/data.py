"""Datasets for training and evaluating compressed models.

:func:`load_dataset` returns a :class:`Dataset`: ``x`` float32 ``N x C x H x W`` and
``y`` int64 ``N``. Three sources:

- ``"fashion-mnist"``: Debian's ``dataset-fashion-mnist`` package (idx files in
  ``/usr/share/datasets/fashion-mnist/``, gzipped or not). Pixels are scaled to
  [0, 1] by ``/ 255`` and **not** mean/std-normalised: real zero stays an exact
  input value and the network's symmetric input quantizer needs no offset.
  ``split="train"`` is the 60,000 training images, ``"test"`` the 10,000 test images.
- ``"synthetic"``: a deterministic, learnable stand-in (class-dependent Gaussian blobs
  plus noise, 1 x 28 x 28, 10 classes) for tests and demos; see :func:`synthetic`.
- a path to an ``.npz`` file with arrays ``x`` (``N x C x H x W`` or ``N x H x W``;
  float, or uint8 which is scaled by ``/ 255``) and ``y`` (``N`` integer labels >= 0).
  If the file also holds ``x_test``/``y_test`` those are the test split; otherwise the
  last 10 % of ``x``/``y`` is the test split and the first 90 % the training split.
  ``split="all"`` is the whole of ``x``/``y``.

``limit`` keeps the first ``limit`` samples of the split (after the split is taken).

>>> d = load_dataset("synthetic", split="test", limit=8)
>>> tuple(d.x.shape), d.x.dtype, d.y.dtype, d.num_classes
((8, 1, 28, 28), torch.float32, torch.int64, 10)
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from exporters.errors import FoldlineError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLITS = ("train", "test", "all")
SYNTHETIC_SIZES = {"train": 2048, "test": 512}
NPZ_TEST_FRACTION = 0.1

_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DataError(FoldlineError):
    """A dataset that is missing, unreadable or malformed."""


@dataclass(frozen=True)
class Dataset:
    """Images ``x`` (float32, N x C x H x W) and labels ``y`` (int64, N)."""

    x: torch.Tensor
    y: torch.Tensor
    name: str = ""

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, ``(C, H, W)``."""
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """``max(y) + 1`` (at least 1)."""
        return int(self.y.max()) + 1 if len(self) else 1

    def subset(self, limit: int | None) -> "Dataset":
        """The first ``limit`` samples (all of them for ``None``)."""
        if limit is None:
            return self
        return Dataset(self.x[:limit], self.y[:limit], self.name)


def load_dataset(source: str | os.PathLike, split: str = "train", limit: int | None = None,
                 *, root: str | os.PathLike | None = None) -> Dataset:
    """Load ``source`` (``"fashion-mnist"``, ``"synthetic"`` or an ``.npz`` path).

    ``root`` overrides the Fashion-MNIST directory. Raises :class:`DataError` with a
    one-line message for anything wrong with the data.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of samples, got {limit}")
    name = os.fspath(source)
    if name == "fashion-mnist":
        data = _fashion_mnist(split, Path(root) if root is not None else FASHION_MNIST_DIR)
    elif name == "synthetic":
        data = _synthetic_split(split)
    elif name.endswith(".npz"):
        data = _npz(Path(name), split)
    else:
        raise DataError(f"unknown dataset {name!r} (expected fashion-mnist, synthetic "
                        "or a path to an .npz file)")
    return data.subset(limit)


# --- synthetic ------------------------------------------------------------------------

def synthetic(n: int, shape: tuple[int, int, int] = (1, 28, 28), classes: int = 10,
              seed: int = 0, noise: float = 0.15) -> Dataset:
    """``n`` deterministic samples: class ``k`` is a Gaussian blob at a fixed place.

    Class centres sit on a ring around the image centre; each sample jitters the
    centre by up to ~1/10 of the image, scales the amplitude, and adds Gaussian
    pixel noise, then clips to [0, 1]. Every channel holds the same blob scaled by
    ``(c + 1) / C``. Same arguments, same tensors.

    >>> a, b = synthetic(4, seed=3), synthetic(4, seed=3)
    >>> bool(torch.equal(a.x, b.x)) and bool(torch.equal(a.y, b.y))
    True
    """
    c, h, w = shape
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    rng.shuffle(y)
    angle = 2 * np.pi * y / classes
    cy = h / 2 + 0.3 * h * np.sin(angle) + rng.uniform(-0.1, 0.1, n) * h
    cx = w / 2 + 0.3 * w * np.cos(angle) + rng.uniform(-0.1, 0.1, n) * w
    sigma = 0.12 * min(h, w) * (1 + (y % 3) * 0.25)  # blob size also depends on class
    amp = rng.uniform(0.6, 1.0, n)
    yy, xx = np.mgrid[0:h, 0:w]
    d2 = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2
    blob = amp[:, None, None] * np.exp(-d2 / (2 * sigma[:, None, None] ** 2))
    gain = (np.arange(c) + 1) / c
    x = blob[:, None] * gain[None, :, None, None]
    x = x + noise * rng.standard_normal(x.shape)
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    return Dataset(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), "synthetic")


def _synthetic_split(split: str) -> Dataset:
    if split == "all":
        train, test = _synthetic_split("train"), _synthetic_split("test")
        return Dataset(torch.cat([train.x, test.x]), torch.cat([train.y, test.y]), "synthetic")
    return synthetic(SYNTHETIC_SIZES[split], seed=0 if split == "train" else 1)


# --- Fashion-MNIST (idx files) ----------------------------------------------------------

def _fashion_mnist(split: str, root: Path) -> Dataset:
    if split == "all":
        train, test = _fashion_mnist("train", root), _fashion_mnist("test", root)
        return Dataset(torch.cat([train.x, test.x]), torch.cat([train.y, test.y]),
                       "fashion-mnist")
    images_name, labels_name = _FASHION_FILES[split]
    images = _read_idx(_find_idx(root, images_name), ndim=3)
    labels = _read_idx(_find_idx(root, labels_name), ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{root}: {images.shape[0]} images but {labels.shape[0]} labels "
                        f"in the {split} split")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return Dataset(x, torch.from_numpy(labels.astype(np.int64)), "fashion-mnist")


def _find_idx(root: Path, name: str) -> Path:
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"Fashion-MNIST file {name}[.gz] not found in {root} "
                    "(install it with: apt-get install dataset-fashion-mnist)")


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte idx file (big-endian header: magic 0x0000 08 ndim, dims)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated idx header")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != 0x0800 + ndim:
        raise DataError(f"{path}: not a {ndim}-D unsigned-byte idx file (magic {magic:#x})")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: expected {int(np.prod(dims))} bytes of data for shape "
                        f"{dims}, found {body.size}")
    return body.reshape(dims)


# --- .npz --------------------------------------------------------------------------------

def _npz(path: Path, split: str) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)} "
                        f"(found: {', '.join(sorted(arrays)) or 'none'}); "
                        "expected x (N x C x H x W) and y (N labels)")
    x, y = _check_xy(path, arrays["x"], arrays["y"], "x", "y")
    if split == "all":
        return Dataset(x, y, path.name)
    if "x_test" in arrays or "y_test" in arrays:
        if split == "test":
            x, y = _check_xy(path, arrays.get("x_test"), arrays.get("y_test"),
                             "x_test", "y_test")
        return Dataset(x, y, path.name)
    n_test = max(1, int(round(len(y) * NPZ_TEST_FRACTION))) if len(y) > 1 else 0
    cut = len(y) - n_test
    if split == "train":
        return Dataset(x[:cut], y[:cut], path.name)
    return Dataset(x[cut:], y[cut:], path.name)


def _check_xy(path: Path, x: np.ndarray | None, y: np.ndarray | None,
              xk: str, yk: str) -> tuple[torch.Tensor, torch.Tensor]:
    if x is None or y is None:
        raise DataError(f"{path}: {xk} and {yk} must both be present")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataError(f"{path}: {xk} has shape {x.shape}; expected N x C x H x W "
                        "(or N x H x W)")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise DataError(f"{path}: {xk} contains NaN or infinity")
    else:
        raise DataError(f"{path}: {xk} has dtype {x.dtype}; expected a float type or uint8")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {yk} has shape {y.shape} and dtype {y.dtype}; "
                        "expected N integer labels")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"{path}: {xk} has {x.shape[0]} samples but {yk} has {y.shape[0]}")
    if y.size and y.min() < 0:
        raise DataError(f"{path}: {yk} contains negative labels")
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))
