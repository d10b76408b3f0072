"""The window rule of the integer contract ("Window geometry", "AvgPool's divisor"): output sizes,
ceil mode's end padding and each edge window's divisor against PyTorch's own pooling (an independent
oracle), the divided average against a direct loop over the windows, 1-D naming in the report, files
written before the fields existed, and the layers' refusals."""

import itertools
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from exporters import examples, stats
from exporters import integer_model as im
from exporters.errors import ModelError
from exporters.grid import Grid
from exporters.onnx_export import METADATA_KEY, to_onnx
from exporters.onnx_import import load_integer_model
from exporters.requant import requantize
from toolchain.integer_mode import run_integer

#: (length, kernel, stride, padding) PyTorch accepts (padding at most half the kernel)
AXES = [(n, k, s, p) for n, k, s in itertools.product(range(1, 10), range(1, 5), range(1, 4))
        for p in range(0, k // 2 + 1) if n + 2 * p >= k]


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_output_length_and_end_padding_match_pytorch(ceil_mode):
    for n, k, s, p in AXES:
        want = F.max_pool1d(torch.zeros(1, 1, n), k, s, p, ceil_mode=ceil_mode).shape[-1]
        window = im.Window.over("pool", (n,), (k,), (s,), (p,), ceil_mode=ceil_mode)
        assert window.output((n,)) == (want,), (n, k, s, p)
        assert (window.extra == (0,)) if not ceil_mode else window.extra[0] <= k - 1 - p
        # every window starts inside the input or its left padding: it holds a real tap
        assert (want - 1) * s - p < n


@pytest.mark.parametrize("include_pad", [True, False])
def test_avgpool_divisors_match_pytorch(include_pad):
    """A window's count is torch's divisor: its sum (divisor_override=1) over its average, on ones."""
    for (h, kh, sh, ph), ceil_mode in itertools.product(AXES[::7], (False, True)):
        w, kw, sw, pw = 7, 3, 2, 1
        x = torch.ones(1, 1, h, w, dtype=torch.float64)
        args = ((kh, kw), (sh, sw), (ph, pw), ceil_mode, include_pad)
        want = F.avg_pool2d(x, *args, divisor_override=1) / F.avg_pool2d(x, *args)
        layer = im.AvgPool("p", "x", (kh, kw), (sh, sw), (ph, pw), None, ceil_mode, include_pad)
        assert np.array_equal(layer.counts_over((h, w)), want[0, 0].round().numpy().astype(np.int64))


def _average_reference(model, layer, x_int):
    """The contract's rule by direct loops: sum (x - z) over each window's real taps, requantized by the
    (M, n) of the window's count, counted here from the geometry (not from ``AvgPool.counts``)."""
    g = model.grid(layer.input)
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    _, oh, ow = model.shape(layer.name)
    n, c, h, w = x_int.shape
    out = np.empty((n, c, oh, ow), np.int64)
    for i, j in itertools.product(range(oh), range(ow)):
        rows = [r for r in range(i * sh - ph, i * sh - ph + kh) if (-ph if layer.count_include_pad else 0) <= r
                < (h + ph if layer.count_include_pad else h)]
        cols = [q for q in range(j * sw - pw, j * sw - pw + kw) if (-pw if layer.count_include_pad else 0) <= q
                < (w + pw if layer.count_include_pad else w)]
        real = [(r, q) for r in rows for q in cols if 0 <= r < h and 0 <= q < w]
        acc = sum(x_int[:, :, r, q].astype(np.int64) - g.zero_point for r, q in real)
        m, shift = layer.count_rule(len(rows) * len(cols))
        lo, hi = layer.requant.bounds
        out[:, :, i, j] = requantize(acc, m, shift, layer.requant.out.zero_point, lo, hi)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_divided_average_follows_the_contract(seed):
    rng = np.random.default_rng(seed)
    b = examples.Builder(rng, (3, 7, 8), zero_points=["random", "extreme", "zero"][seed % 3])
    x = b.conv("input_q", 3, kernel=3, padding=1)
    x = b.avgpool(x, 3, stride=2, padding=1, ceil_mode=seed % 2 == 0, count_include_pad=seed in (0, 2))
    b.flatten(x)
    b.linear(b.layers[-1].name, 2, relu=False, signed_out=True)
    model = b.build()
    pool = model.layer(x)
    assert pool.divides_by_count(model)
    inputs = torch.from_numpy(examples.random_inputs(rng, model, 5))
    got = run_integer(model, inputs, intermediate=True)
    expected = _average_reference(model, pool, got[pool.input].numpy())
    assert np.array_equal(got[x].numpy(), expected)


def test_report_rows_speak_1d():
    model = examples.time_series(np.random.default_rng(0))
    rows = stats.layer_stats(model)
    assert [(r["op"], r["kernel"]) for r in rows] == [("Conv1d", [5]), ("MaxPool1d", [2]), ("Conv1d", [3]),
                                                      ("AvgPool1d", [3]), ("GlobalAvgPool1d", [8]), ("Linear", None)]
    conv = rows[0]
    assert conv["macs"] == 32 * 8 * 5  # 32 output samples x 8 filters x 5 taps: a 1-D map's positions count


def test_a_file_written_before_the_fields_loads_with_their_defaults():
    model = examples.cnn(np.random.default_rng(1))
    proto = to_onnx(model)
    entries = json.loads(proto.metadata_props[[p.key for p in proto.metadata_props].index(METADATA_KEY)].value)
    for entry in entries:
        for key in ("dilation", "ceil_mode", "count_include_pad", "partial_multipliers", "partial_shifts"):
            entry.pop(key, None)
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = json.dumps(entries)
    old = load_integer_model(proto)
    assert to_onnx(old).SerializeToString() == to_onnx(model).SerializeToString()
    assert old.layer("conv1").dilation == (1, 1) and old.layer("maxpool2").ceil_mode is False


def _one_layer(layer, shape=(2, 9)):
    return im.IntegerModel([im.Input("x", shape, Grid(0.1, 0, 8, True)), layer])


def test_windows_are_refused_with_the_layer_named():
    rq = im.Requant([1 << 15] * 2, [16] * 2, Grid(0.1, 0, 8, False))
    with pytest.raises(ModelError, match="layer 'p': MaxPool padding \\(2,\\) must be smaller than the kernel"):
        _one_layer(im.MaxPool("p", "x", (2,), None, (2,))).shape("p")
    with pytest.raises(ModelError, match="count_include_pad=False \\(a window of padding only counts nothing\\)"):
        _one_layer(im.AvgPool("p", "x", (2,), None, (2,), rq, count_include_pad=False)).shape("p")
    with pytest.raises(ModelError, match="layer 'p': kernel \\(2, 2\\).* need one value per axis of a 1-D input"):
        _one_layer(im.MaxPool("p", "x", 2)).shape("p")
    model = _one_layer(im.AvgPool("p", "x", (3,), (2,), (1,), rq, count_include_pad=False))
    with pytest.raises(ModelError, match="layer 'p': AvgPool needs 2 partial-window \\(M, n\\) pairs"):
        model.layer("p").check(model)
    conv = im.Conv("c", "x", np.ones((2, 2, 3, 3), np.int64), np.zeros(2, np.int64), 8, np.ones(2), rq)
    with pytest.raises(ModelError, match="layer 'c': Conv weight \\(2, 2, 3, 3\\) must be .* \\(C, L\\) input"):
        _one_layer(conv).shape("c")
    dilated = im.Conv("c", "x", np.ones((2, 2, 3), np.int64), np.zeros(2, np.int64), 8, np.ones(2), rq, dilation=5)
    with pytest.raises(ModelError, match="layer 'c': window \\(3,\\) \\(dilation \\(5,\\)\\) does not fit"):
        _one_layer(dilated).shape("c")
