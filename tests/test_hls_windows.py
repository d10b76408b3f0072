"""The HLS window kernels on dilated, ceil-mode, edge-divided and 1-D windows: g++ C simulation equals
the simulator on every output element (both architectures, reuse 1 and 2), and the estimator's window
schedule follows the line buffers such a window needs."""

import numpy as np
import pytest

from exporters import examples
from exporters import integer_model as im
from exporters.examples import Builder, random_inputs
from hls_templates import HlsConfig, run_csim, write_project
from hls_templates.estimate.core import cost_model
from hls_templates.golden import golden_vectors
from tests.test_hls_csim import strict_syntax_check
from tests.test_tc_common import needs_gxx


def windows_1d(rng, **kw) -> im.IntegerModel:
    """1-D paths the time-series example leaves out: a grouped dilated conv, a padded ceil-mode max pool,
    a ceil-mode average pool counting its padding, and a layer whose name is a C library type's stem
    (``div`` would make ``div_t``, <stdlib.h>'s)."""
    b = Builder(rng, (4, 30), **kw)
    x = b.conv("input_q", 4, kernel=3, padding=3, groups=2, dilation=3)  # (4, 30)
    x = b.maxpool(x, kernel=3, stride=2, padding=1, ceil_mode=True)  # (4, 16): the last window overhangs
    x = b.avgpool(x, kernel=3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)  # (4, 9): so does its last
    b.layers[-1].name = "div"
    x = b.conv("div", 3, kernel=2, padding=0)
    x = b.flatten(x)
    b.linear(x, 4, relu=False, signed_out=True)
    return b.build("windows_1d")


def windows_2d(rng, **kw) -> im.IntegerModel:
    """A rectangular dilation, a depthwise dilated conv and an average pool dividing its edges in one axis."""
    b = Builder(rng, (2, 9, 12), **kw)
    w = b._weights((4, 2, 3, 2), 6)
    rq = b._requant(w.reshape(4, -1), b.in_grid("input_q"), b.grid(8), True)
    x = b.add(im.Conv("rect", "input_q", w, rng.integers(-300, 300, 4), 6, np.full(4, 0.01), rq, padding=(2, 1),
                      dilation=(2, 3)))  # (4, 9, 11)
    x = b.conv(x, 4, kernel=3, padding=2, groups=4, dilation=2)  # depthwise, (4, 9, 11)
    x = b.avgpool(x, kernel=2, stride=2, ceil_mode=True)  # (4, 5, 6): the last row and column overhang
    x = b.flatten(x)
    b.linear(x, 3, relu=False, signed_out=True)
    return b.build("windows_2d")


CASES = {
    "time-series-dataflow": (examples.time_series, {}, dict(architecture="dataflow")),
    "time-series-parallel": (examples.time_series, {}, dict(architecture="parallel")),
    "dilated-dataflow": (examples.dilated, dict(zero_points="extreme"), dict(architecture="dataflow")),
    "dilated-parallel": (examples.dilated, {}, dict(architecture="parallel", reuse_factor=2)),
    "windows-1d-dataflow": (windows_1d, {}, dict(architecture="dataflow", reuse_factor=2)),
    "windows-1d-parallel": (windows_1d, dict(zero_points="extreme"), dict(architecture="parallel")),
    "windows-2d-dataflow": (windows_2d, {}, dict(architecture="dataflow")),
    "windows-2d-parallel": (windows_2d, {}, dict(architecture="parallel")),
}


def lively(name):
    """The case's model and inputs for the first seed whose outputs take at least 4 distinct values."""
    fn, model_kw, _ = CASES[name]
    for seed in range(40):
        rng = np.random.default_rng(seed)
        model = fn(rng, **model_kw)
        x = random_inputs(rng, model, 6)
        if len(np.unique(golden_vectors(model, x)[1])) >= 4:
            return model, x
    raise AssertionError(f"{name}: no seed below 40 gives varied outputs")


@needs_gxx
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_csim_equals_the_simulator_on_every_element(tmp_path, name):
    model, x = lively(name)
    project = write_project(model, tmp_path / "hls", HlsConfig(**CASES[name][2]), inputs=x)
    result = run_csim(project)
    assert result.samples == len(x) and result.elements == len(x) * model.shape(model.output.name)[0]
    assert result.mismatches == 0, result.first_mismatch


@needs_gxx
@pytest.mark.parametrize("name", ["windows-1d-dataflow", "windows-2d-parallel"])
def test_window_kernels_compile_warning_free(tmp_path, name):
    """The dilated, ceil-mode, counted and 1-D instantiations, as test_hls_csim checks the others."""
    model, x = lively(name)
    project = write_project(model, tmp_path / "hls", HlsConfig(**CASES[name][2]), inputs=x)
    proc = strict_syntax_check(project)
    out = proc.communicate()[0]
    assert proc.returncode == 0, out[:2000]


def test_counted_average_pool_gets_its_table_by_row_and_column_counts(tmp_path):
    model, x = lively("windows-2d-dataflow")
    layer = next(layer for layer in model.layers if isinstance(layer, im.AvgPool))
    project = write_project(model, tmp_path / "hls", HlsConfig(architecture="dataflow"), inputs=x)
    top = (project / "firmware" / "foldline_top.cpp").read_text()
    assert "foldline::avgpool_stream<" in top
    config = (project / "firmware" / "parameters.h").read_text()
    assert "static constexpr bool counted = true;" in config and "static constexpr unsigned n_rules = 4;" in config
    weights = (project / "firmware" / "weights" / f"{layer.name}.h").read_text()
    # 2 x 2 kernel: entries (rows, columns) = (1, 1), (1, 2), (2, 1), (2, 2), counts 1, 2, 2, 4
    rules = [layer.count_rule(k) for k in (1, 2, 2, 4)]
    assert f"{layer.name}_m[4] = {{{', '.join(str(m) for m, _ in rules)}}}" in weights


def test_estimator_window_follows_dilation_and_ceil_mode():
    """Hand-derived for the dilated conv of ``windows_2d``: input 9 x 12, padding (2, 1), dilation (2, 3),
    kernel 3 x 2 -> the window spans 5 x 4, 9 x 11 outputs; the padded plane is 13 x 14 iterations."""
    model, _ = lively("windows-2d-dataflow")
    costs = cost_model(model, {"architecture": "dataflow"}).costs
    rect = costs["rect"]
    assert (rect.iterations, rect.fill, rect.tail, rect.out_pixels) == (13 * 14, 4 * 14 + 4, 2 * 14 + 1, 9 * 11)
    pool = costs[next(layer.name for layer in model.layers if isinstance(layer, im.AvgPool))]
    # 9 x 11 input, 2 x 2 stride 2 in ceil mode: one row and one column of end padding, 10 x 12 iterations
    assert (pool.iterations, pool.tail, pool.out_pixels) == (10 * 12, 1 * 12 + 1, 5 * 6)


def test_hls4ml_bridge_refuses_what_it_does_not_map_naming_the_layer():
    from hls_templates.hls4ml_bridge import Hls4mlUnsupportedError, check_hls4ml_exact, power_of_two_copy

    rng = np.random.default_rng(0)
    with pytest.raises(Hls4mlUnsupportedError, match="layer 'conv1': Conv1d \\(a 1-D layer\\) is not mapped"):
        check_hls4ml_exact(power_of_two_copy(examples.time_series(rng, power_of_two=True)))
    with pytest.raises(Hls4mlUnsupportedError, match="layer 'conv1': dilation \\(2, 2\\) is not mapped"):
        check_hls4ml_exact(power_of_two_copy(examples.dilated(rng, power_of_two=True)))
    b = Builder(rng, (2, 7, 7), power_of_two=True)
    b.maxpool(b.conv("input_q", 2, padding=0), 2, ceil_mode=True)
    b.linear(b.flatten(b.layers[-1].name), 2, relu=False, signed_out=True)
    with pytest.raises(Hls4mlUnsupportedError, match="layer 'maxpool2': ceil_mode \\(end padding \\(1, 1\\)\\)"):
        check_hls4ml_exact(power_of_two_copy(b.build()))
