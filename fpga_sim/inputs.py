"""Input arrays for a Foldline graph, as ``fpga-sim`` and ``fpga-hls --inputs`` read them.

:func:`load_npz` reads the arrays of an ``.npz`` (one-line errors for anything else); the
one rule for float inputs, :func:`float32_input`, follows.

A Foldline graph's float input is ``float32``; its first node, QuantizeLinear, is undefined
for NaN and infinity. So:

- NaN or infinity anywhere is refused, naming the array, the first index and the count
  (:func:`check_finite`, also used for export-fpga's calibration);
- ``float32`` is used as it is;
- another float dtype (``float64``, ``float16``) is accepted only when every value is
  exactly a float32 value, and converted: the integers computed are then the ones the
  user's own values give. A value float32 cannot hold (``0.1`` as float64) is refused
  rather than rounded silently; the message says how to convert on purpose.

Integer arrays are returned as they are: what an integer feed means is the caller's rule
(the simulator checks dtypes against the graph; ``fpga-hls`` takes integers as already
quantized inputs). ``export-fpga --calibration`` applies :func:`check_finite` only: its
data are statistics for float models as well as test inputs, so they are rounded to
float32 like PyTorch would, and ``inputs.npz`` keeps the float32 values every check used.

>>> float32_input(np.array([0.5, 2.0]), "x").dtype
dtype('float32')
>>> float32_input(np.array([0.1]), "x.npz: array 'x'")
Traceback (most recent call last):
...
fpga_sim.errors.FeedError: x.npz: array 'x' is float64 and 0.1 (index (0,)) is not exactly a float32 value; convert it on purpose with x.astype(numpy.float32)
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from fpga_sim.errors import FeedError


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def check_finite(array: np.ndarray, what: str) -> None:
    """Raise :class:`FeedError` naming ``what`` when a float ``array`` holds NaN or infinity."""
    if not np.issubdtype(array.dtype, np.floating):
        return
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        first = bad[0]
        value = "NaN" if np.isnan(array.flat[first]) else f"{array.flat[first]}"
        raise FeedError(f"{what} holds {value} at index {_index(first, array.shape)} "
                        f"({bad.size} NaN/infinite value(s) in all)")


def float32_input(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` for a float32 graph input, by the module's rule; integer arrays unchanged."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        return array
    check_finite(array, what)
    if array.dtype == np.float32:
        return array
    converted = array.astype(np.float32)
    inexact = np.flatnonzero(converted.astype(array.dtype) != array)
    if inexact.size:
        first = inexact[0]
        raise FeedError(f"{what} is {array.dtype} and {array.flat[first]} (index {_index(first, array.shape)}) "
                        "is not exactly a float32 value; convert it on purpose with x.astype(numpy.float32)")
    return converted


def load_npz(path: str) -> dict[str, np.ndarray]:
    """All arrays of the .npz file ``path``, by name; :class:`FeedError` (one line) if it is not one."""
    if not os.path.isfile(path):
        raise FeedError(f"{path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise FeedError(f"{path}: not a valid .npz file ({exc})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise FeedError(f"{path}: not an .npz archive (a single array)")
    try:
        with data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise FeedError(f"{path}: not a valid .npz file ({exc})") from exc
