"""The writer's pieces without a compiler: emitter, sparse tables, layouts, plumbing, style rules."""

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporters import examples
from exporters import integer_model as im
from hls_templates import HlsConfig
from hls_templates.cpp import count, integer, render_struct, render_table, typedef
from hls_templates.errors import UnsupportedModelError
from hls_templates.kernels import conv_kernel, linear_kernel, sparse_table
from hls_templates.plan import _identifiers, plan
from hls_templates.render import parameters_h, top_cpp


@dataclass
class Demo:
    value_t: str = typedef("a type")
    size: int = count("a count")
    low: int = integer("")


def test_render_struct_and_table():
    text = render_struct("cfg", Demo("ap_uint<3>", 4, -2))
    assert text.splitlines() == ["struct cfg {", "    typedef ap_uint<3> value_t;  // a type",
                                 "    static constexpr unsigned size = 4;  // a count",
                                 "    static constexpr int low = -2;", "};"]
    with pytest.raises(ValueError):
        render_struct("cfg", Demo("t", -1, 0))
    assert render_table("t", "int", [(1, 2, -3)]) == "static const int t[1] = {{1, 2, -3}};"
    long = render_table("t", "int", list(range(40)))
    assert long.count("\n") == 4 and long.endswith("};")


@given(st.integers(1, 5), st.integers(1, 12), st.floats(0, 1), st.integers(0, 2**32 - 1))
def test_sparse_table_reconstructs_matrix(n_out, n_taps, density, seed):
    rng = np.random.default_rng(seed)
    m = rng.integers(-7, 8, (n_out, n_taps)) * (rng.random((n_out, n_taps)) < density)
    entries = sparse_table(m)
    assert len(entries) == np.count_nonzero(m)
    back = np.zeros_like(m)
    for o, t, w in entries:
        assert w != 0
        back[o, t] = w
    np.testing.assert_array_equal(back, m)


def _dense(kernel, n_out, n_taps):
    m = np.zeros((n_out, n_taps), np.int64)
    for o, t, w in kernel.tables[0].values:
        m[o, t] += w
    return m


@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 4]))
def test_conv_taps_follow_groups(seed, groups):
    """tap = (kh * KW + kw) * C + global input channel; a grouped filter reads only its group."""
    rng = np.random.default_rng(seed)
    b = examples.Builder(rng, (4, 5, 5))
    b.conv("input_q", 4, kernel=3, groups=groups, relu=False, signed_out=True)
    model = b.build()
    design = plan(model, HlsConfig(architecture="dataflow"))
    layer = model.layers[1]
    m = _dense(design.kernels[0], 4, 9 * 4)
    for f in range(4):
        g = f // (4 // groups)
        for ci in range(4 // groups):
            for y in range(3):
                for x in range(3):
                    assert m[f, (y * 3 + x) * 4 + g * (4 // groups) + ci] == layer.weight[f, ci, y, x]
    assert np.count_nonzero(m) == np.count_nonzero(layer.weight)


@pytest.mark.parametrize("arch", ["dataflow", "parallel"])
def test_linear_after_flatten_reads_hwc(arch):
    """The permuted weights applied to the HWC vector equal the model's weights on the CHW one."""
    rng = np.random.default_rng(3)
    model = examples.cnn(rng)
    design = plan(model, HlsConfig(architecture=arch))
    fc = model.layers[-1]
    kernel = next(k for k in design.kernels if k.layer == fc.name)
    c, h, w = model.shape(model.layers[-3].name)
    chw = rng.integers(0, 256, (c, h, w))
    hwc = chw.transpose(1, 2, 0).reshape(-1)
    m = _dense(kernel, fc.out_channels, c * h * w)
    np.testing.assert_array_equal(m @ hwc, fc.weight @ chw.reshape(-1))


def test_identifiers_are_distinct_and_legal():
    ids = _identifiers(["conv.1", "conv_1", "1x", "input", "result", "a-b", "my_top", ""], "my_top")
    assert len(set(ids.values())) == len(ids)
    assert all(i.isidentifier() and i not in ("input", "result", "my_top") for i in ids.values())


def test_add_of_different_layouts_is_refused():
    rng = np.random.default_rng(0)
    b = examples.Builder(rng, (2, 2, 2))
    f = b.flatten(b.conv("input_q", 2))
    v = b.linear(f, 8)
    b.linear(b.residual_add(f, v), 3, relu=False, signed_out=True)
    with pytest.raises(UnsupportedModelError, match="different layouts"):
        plan(b.build(), HlsConfig())


def test_rendered_code_is_data_and_calls_only():
    """Style: Python renders config structs, tables and call lines; no kernel body, no markers."""
    model = examples.residual(np.random.default_rng(1))
    for arch in ("dataflow", "parallel"):
        design = plan(model, HlsConfig(architecture=arch))
        top = top_cpp(design)
        body = top.split("{", 1)[1]
        assert " for (" not in body and "if (" not in body
        assert "hls4ml insert" not in top and "//#" not in top
        params = parameters_h(design)
        assert params.count("struct config_") == len([k for k in design.kernels if k.config is not None])
        for kernel in design.kernels:
            assert kernel.call() in top


def test_pragmas_present_in_generated_top():
    model = examples.cnn(np.random.default_rng(2))
    df = top_cpp(plan(model, HlsConfig(architecture="dataflow")))
    assert "#pragma HLS DATAFLOW" in df and "#pragma HLS INTERFACE axis port=input" in df
    assert "#pragma HLS STREAM variable=" in df
    par = top_cpp(plan(model, HlsConfig(architecture="parallel")))
    assert "#pragma HLS PIPELINE" in par and "#pragma HLS ARRAY_PARTITION variable=" in par


def test_model_without_computation_is_refused():
    b = examples.Builder(np.random.default_rng(0), (4,))
    model = im.IntegerModel(list(b.layers), name="empty")
    with pytest.raises(UnsupportedModelError, match="computes nothing"):
        plan(model, HlsConfig())


def test_kernel_functions_registered_explicitly():
    from hls_templates.kernels import KERNELS
    assert KERNELS[im.Conv] is conv_kernel and KERNELS[im.Linear] is linear_kernel
    # which types need a kernel at all is tests/test_layer_registry.py's; here: these are registered
    assert {im.Conv, im.Linear, im.MaxPool, im.AvgPool, im.GlobalAvgPool, im.Add, im.Lookup} <= set(KERNELS)
