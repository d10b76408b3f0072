"""C simulation of generated HLS projects == the Foldline simulator, on every output element.

Each project is compiled once per module (g++ -O2 of ap_int code takes seconds); the expected
outputs always come from the simulator (fpga_sim), never from the C++ under test.
"""

import shutil
import subprocess

import numpy as np
import pytest

from exporters import examples
from exporters import integer_model as im
from exporters.examples import Builder, random_inputs
from hls_templates import HlsConfig, run_csim, write_project
from hls_templates.errors import ToolError
from hls_templates.golden import golden_vectors, read_dat
from tests.test_tc_common import needs_gxx

pytestmark = needs_gxx


def zoo(rng, **kw) -> im.IntegerModel:
    """Every kernel path the examples leave out: the input read twice (clone), Add of a tensor with
    itself, stride 2 without padding, grouped (not depthwise) conv, MaxPool/AvgPool with padding,
    a rectangular kernel and stride, a dead branch, and a feature map as the output (unpacked from
    the pixel-major stream into the model's C-major order)."""
    b = Builder(rng, (3, 9, 11), **kw)
    x = b.conv("input_q", 3, kernel=3, padding=1)
    x = b.residual_add("input_q", x)
    x = b.residual_add(x, x)
    x = b.conv(x, 4, kernel=3, stride=2, padding=0)  # (4, 4, 5)
    x = b.maxpool(x, kernel=3, stride=1, padding=1)
    x = b.conv(x, 4, kernel=3, padding=1, groups=2)
    b.maxpool(x, kernel=2)  # dead: nothing reads it
    x = b.avgpool(x, kernel=3, stride=2, padding=1)  # (4, 2, 3)
    w = b._weights((4, 4, 1, 3), 6)
    rq = b._requant(w.reshape(4, -1), b.in_grid(x), b.grid(8), True)
    x = b.add(im.Conv("rect", x, w, rng.integers(-500, 500, 4), 6, np.full(4, 0.01), rq, stride=(1, 2),
                      padding=(0, 1)))
    b.conv(x, 2, kernel=1, padding=0, relu=False, signed_out=True)
    return b.build("zoo")


def joins(rng, **kw) -> im.IntegerModel:
    """Concat and Upsample paths the U-Net leaves out: a tensor concatenated with itself (a clone),
    three inputs (a chain of two kernels), an input copied onto the output grid, the signed network
    input as an input, a rectangular factor, a fused ReLU, and a Concat of vectors."""
    b = Builder(rng, (2, 5, 6), **kw)
    x = b.conv("input_q", 3)  # (3, 5, 6)
    x = b.concat([x, x, "input_q"], copy_first=True)  # (8, 5, 6)
    x = b.upsample(x, (1, 3))  # (8, 5, 18)
    d = b.conv(x, 4, kernel=3, stride=2, padding=1)  # (4, 3, 9)
    e = b.conv(d, 2, kernel=1, padding=0)
    f = b.concat([d, e], relu=True)  # (6, 3, 9)
    v = b.concat([b.global_avgpool(f), b.global_avgpool(d)])  # (10,)
    b.linear(v, 3, relu=False, signed_out=True)
    return b.build("joins")


def sparse(rng, **kw) -> im.IntegerModel:
    """Half the weights zero, one depthwise filter and one Linear row entirely zero."""
    b = Builder(rng, (2, 8, 8), **kw)
    x = b.conv("input_q", 4, density=0.5)
    x = b.conv(x, 4, groups=4, density=0.5)
    x = b.maxpool(x)
    x = b.flatten(x)
    x = b.linear(x, 6, density=0.5, relu=False, signed_out=True)
    model = b.build("sparse")
    model.layer("conv2").weight[1] = 0
    model.layer("fc5").weight[2] = 0
    model.validate()
    return model


def zero_layer_mlp(rng, **kw) -> im.IntegerModel:
    """A Linear layer whose weights are all zero (its table holds only a placeholder)."""
    model = examples.mlp(rng, features=(8, 6, 5), **kw)
    model.layer("fc1").weight[:] = 0
    model.validate()
    return model


CASES = {
    # name: (builder, builder kwargs, HlsConfig kwargs)
    "mlp-parallel": (examples.mlp, {}, dict(architecture="parallel")),
    "mlp-dataflow": (examples.mlp, {}, dict(architecture="dataflow")),
    "cnn-dataflow": (examples.cnn, {}, dict(architecture="dataflow")),
    "cnn-parallel": (examples.cnn, {}, dict(architecture="parallel")),
    "dws-dataflow": (examples.depthwise_separable, {}, dict(architecture="dataflow")),
    "dws-parallel": (examples.depthwise_separable, {}, dict(architecture="parallel")),
    "residual-dataflow": (examples.residual, {}, dict(architecture="dataflow")),
    "residual-parallel": (examples.residual, {}, dict(architecture="parallel")),
    "mlp-extreme-parallel": (examples.mlp, dict(zero_points="extreme"), dict(architecture="parallel")),
    "cnn-extreme-dataflow": (examples.cnn, dict(zero_points="extreme"), dict(architecture="dataflow")),
    "residual-extreme-dataflow": (examples.residual, dict(zero_points="extreme"), dict(architecture="dataflow")),
    "sparse-dataflow": (sparse, {}, dict(architecture="dataflow")),
    "sparse-parallel": (sparse, {}, dict(architecture="parallel")),
    "zero-layer-parallel": (zero_layer_mlp, {}, dict(architecture="parallel")),
    "random-requant-dataflow": (examples.depthwise_separable, dict(random_requant=True), dict(architecture="dataflow")),
    "random-requant-parallel": (examples.mlp, dict(random_requant=True), dict(architecture="parallel")),
    "reuse-dataflow": (examples.cnn, {}, dict(architecture="dataflow", reuse_factor=3, layer_reuse={"fc6": 7})),
    "reuse-parallel": (examples.mlp, {}, dict(architecture="parallel", reuse_factor=4)),
    "lowbit-dataflow": (examples.residual, dict(weight_bits=4, act_bits=3, input_bits=4),
                        dict(architecture="dataflow")),
    "lowbit-parallel": (examples.mlp, dict(weight_bits=2, act_bits=3, input_bits=3), dict(architecture="parallel")),
    "zoo-dataflow": (zoo, {}, dict(architecture="dataflow")),
    "zoo-parallel": (zoo, {}, dict(architecture="parallel")),
    "unet-dataflow": (examples.unet, {}, dict(architecture="dataflow")),
    "unet-parallel": (examples.unet, {}, dict(architecture="parallel")),
    "joins-dataflow": (joins, {}, dict(architecture="dataflow")),
    "joins-parallel": (joins, {}, dict(architecture="parallel", reuse_factor=2)),
    "joins-extreme-dataflow": (joins, dict(zero_points="extreme"), dict(architecture="dataflow")),
}


DEGENERATE_OK = {"zero-layer-parallel"}  # its first layer outputs a constant by construction


def lively_case(name):
    """The case's model, inputs and golden outputs, for the first seed (deterministic) whose
    outputs take at least 4 distinct values (fewer for a tiny output grid): random models
    sometimes saturate to a constant, and a test that only sees clamped outputs proves little."""
    fn, model_kw, _ = CASES[name]
    for seed in range(40):
        rng = np.random.default_rng(seed)
        model = fn(rng, **model_kw)
        x = random_inputs(rng, model, 6)
        q_in, q_out = golden_vectors(model, x)
        g = model.grid(model.output.name)
        if name in DEGENERATE_OK or len(np.unique(q_out)) >= min(4, (g.hi - g.lo + 1) // 2):
            return model, x, q_out
    raise AssertionError(f"{name}: no seed below 40 gives varied outputs")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Write and simulate each case once: name -> (model, project dir, expected outputs, CsimResult)."""
    cache = {}

    def build(name):
        if name not in cache:
            model, x, q_out = lively_case(name)
            config = HlsConfig(**CASES[name][2])
            project = write_project(model, tmp_path_factory.mktemp(name) / "hls", config, x)
            cache[name] = (model, project, q_out, run_csim(project))
        return cache[name]

    return build


@pytest.mark.parametrize("name", list(CASES))
def test_csim_equals_simulator(built, name):
    model, project, expected, result = built(name)
    assert result.ok, str(result)
    assert result.mismatches == 0 and result.first_mismatch is None
    assert result.samples == len(expected)
    assert result.elements == expected.size
    # the testbench's own record of what the C++ computed, compared here independently
    got = read_dat(project / "tb_data" / "csim_results.log")
    np.testing.assert_array_equal(got, expected.reshape(len(expected), -1))


def test_sparse_tables_list_only_nonzero_weights(built):
    model, project, _, _ = built("sparse-dataflow")
    for layer in (model.layer("conv1"), model.layer("conv2"), model.layer("fc5")):
        text = (project / "firmware" / "weights" / f"{layer.name}.h").read_text()
        header = f"{layer.name}_w[{np.count_nonzero(layer.weight)}]"
        assert header in text, f"{layer.name}: table is not sized by its nonzero count"
        assert f"n_nonzero = {np.count_nonzero(layer.weight)};" in (project / "firmware" / "parameters.h").read_text()
        entries = text.split(header)[1].split("};")[0]
        assert ", 0}" not in entries, f"{layer.name}: a zero weight was listed"


def test_zero_layer_uses_placeholder(built):
    _, project, _, result = built("zero-layer-parallel")
    params = (project / "firmware" / "parameters.h").read_text()
    assert "n_nonzero = 0;" in params and "n_table = 1;" in params
    assert result.ok


def test_reuse_factor_reaches_configs_and_pragmas(built):
    _, project, _, _ = built("reuse-dataflow")
    params = (project / "firmware" / "parameters.h").read_text()
    assert "reuse_factor = 3;" in params and "reuse_factor = 7;" in params
    _, project, _, _ = built("reuse-parallel")
    top = (project / "firmware" / "foldline_top.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in top  # reuse > 1: per-layer pipelines, not one flat pipeline


def test_dead_layer_left_out_and_clones_inserted(built):
    _, project, _, _ = built("zoo-dataflow")
    top = (project / "firmware" / "foldline_top.cpp").read_text()
    assert "left out: maxpool7" in top
    assert top.count("foldline::clone_stream") == 2  # the input, and the add read twice
    # a clone's outputs get FIFOs as deep as the tensor (3x9x11 input: 99 pixels)
    assert "depth=99" in top


def test_a_long_concat_is_a_chain_of_two_input_kernels(built):
    _, project, _, _ = built("joins-dataflow")
    top = (project / "firmware" / "foldline_top.cpp").read_text()
    assert top.count("foldline::concat_stream") == 4  # the 3-input Concat is two kernels, then two more
    assert "concat2_part1" in top and top.count("foldline::upsample_stream") == 1
    params = (project / "firmware" / "parameters.h").read_text()
    assert "copy_a = true;" in params  # the input put on the output grid is copied


def test_corrupted_golden_fails_and_reports_first_mismatch(built, tmp_path):
    _, project, expected, _ = built("cnn-dataflow")
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    golden = read_dat(copy / "tb_data" / "tb_output_predictions.dat")
    golden[2, 3] += 1
    golden[4, 0] -= 1
    with open(copy / "tb_data" / "tb_output_predictions.dat", "w") as f:
        f.write("\n".join(" ".join(map(str, row)) for row in golden) + "\n")
    result = run_csim(copy)
    assert not result.ok
    assert result.mismatches == 2 and result.elements == expected.size
    first = result.first_mismatch
    assert (first.sample, first.index, first.expected) == (2, 3, golden[2, 3])
    assert first.got == expected.reshape(len(expected), -1)[2, 3]
    assert "first mismatch: sample 2, output 3" in str(result)
    # the testbench itself exits nonzero and prints the first difference
    run = subprocess.run([str(copy / "csim" / "foldline_top_csim")], cwd=copy, capture_output=True, text=True)
    assert run.returncode == 1
    assert "FIRST_MISMATCH sample=2 index=3" in run.stdout
    assert "csim: " in run.stdout and f"{expected.size - 2}/{expected.size} elements equal" in run.stdout


def test_testbench_refuses_input_outside_grid(built, tmp_path):
    _, project, _, _ = built("mlp-parallel")
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    data = read_dat(copy / "tb_data" / "tb_input_features.dat")
    data[0, 0] = 200
    with open(copy / "tb_data" / "tb_input_features.dat", "w") as f:
        f.write("\n".join(" ".join(map(str, row)) for row in data) + "\n")
    with pytest.raises(ToolError, match="leaves the input grid"):
        run_csim(copy)


def test_compile_error_is_reported_with_first_lines(built, tmp_path):
    _, project, _, _ = built("mlp-parallel")
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    top = copy / "firmware" / "foldline_top.cpp"
    top.write_text(top.read_text().replace("foldline::linear_array", "foldline::no_such_kernel", 1))
    with pytest.raises(ToolError, match=r"g\+\+ failed on firmware/foldline_top.cpp: .*no_such_kernel"):
        run_csim(copy)


def test_missing_compiler_is_a_clear_error(built):
    _, project, _, _ = built("mlp-parallel")
    with pytest.raises(ToolError, match=r"compiler 'no-such-g\+\+' not found"):
        run_csim(project, cxx="no-such-g++")


def strict_syntax_check(project) -> subprocess.Popen:
    """g++ checking a project as C++11 (Vivado HLS's dialect) with every warning an error, but the HLS
    pragmas and loop labels g++ does not use (the ap types are system headers: their warnings are not ours)."""
    from hls_templates.csim import ap_types_dir

    return subprocess.Popen(
        ["g++", "-std=c++11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
         "-Wno-unused-label", "-I", "firmware", "-isystem", str(ap_types_dir()), "firmware/foldline_top.cpp",
         "foldline_top_test.cpp"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_kernels_are_warning_free_cpp11(built):
    """Every kernel template, instantiated by real projects, compiles as C++11 (Vivado HLS's
    dialect) without warnings other than the HLS pragmas and loop labels g++ does not use."""
    names = ["zoo-dataflow", "zoo-parallel", "dws-dataflow", "dws-parallel", "joins-dataflow", "joins-parallel"]
    procs = [strict_syntax_check(built(name)[1]) for name in names]
    for name, proc in zip(names, procs):
        out = proc.communicate()[0]
        assert proc.returncode == 0, f"{name}: {out[:2000]}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_random_models_sweep(tmp_path, seed):
    """Random example, bit widths, zero points and architecture per seed (the simulator decides)."""
    rng = np.random.default_rng(1000 + seed)
    name = ["mlp", "cnn", "depthwise_separable", "residual", "unet"][seed % 5]
    kw = dict(weight_bits=int(rng.integers(2, 9)), act_bits=int(rng.integers(2, 9)),
              input_bits=int(rng.integers(2, 9)), zero_points=str(rng.choice(["random", "extreme", "zero"])),
              random_requant=bool(rng.random() < 0.3))
    model = examples.EXAMPLES[name](rng, **kw)
    x = random_inputs(rng, model, 4)
    arch = ["dataflow", "parallel"][seed % 2]
    _, q_out = golden_vectors(model, x)
    result = run_csim(write_project(model, tmp_path / "hls", HlsConfig(architecture=arch), x))
    assert result.ok, f"{name} {kw} {arch}: {result}"
    assert result.elements == q_out.size
