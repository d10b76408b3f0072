"""write_project: layout, test vectors, refusals, atomicity."""

import numpy as np
import pytest

from exporters import examples
from exporters.onnx_export import to_onnx
from fpga_sim import Simulator
from hls_templates import HlsConfig, write_project
from hls_templates.errors import HlsConfigError, ProjectError
from hls_templates.golden import golden_vectors, read_dat
from hls_templates.project import quantize_input


@pytest.fixture(scope="module")
def cnn():
    rng = np.random.default_rng(5)
    model = examples.cnn(rng)
    return model, examples.random_inputs(rng, model, 5)


def test_layout(cnn, tmp_path):
    model, x = cnn
    path = write_project(model, tmp_path / "hls", HlsConfig(top="net"), x)
    expected = {"README.md", "build_prj.tcl", "project.tcl", "net_test.cpp", "tb_data/tb_input_features.dat",
                "tb_data/tb_output_predictions.dat", "firmware/net.cpp", "firmware/net.h", "firmware/defines.h",
                "firmware/parameters.h", "firmware/weights/conv1.h", "firmware/weights/conv3.h",
                "firmware/weights/fc6.h", "firmware/foldline/foldline.h", "firmware/foldline/foldline_requant.h",
                "firmware/foldline/foldline_testbench.h"}
    files = {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}
    assert expected <= files
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging left behind
    readme = (path / "README.md").read_text()
    assert "vitis_hls -f build_prj.tcl" in readme and "vivado_hls -f build_prj.tcl" in readme


def test_vectors_come_from_the_simulator(cnn, tmp_path):
    model, x = cnn
    path = write_project(model, tmp_path / "hls", HlsConfig(), x)
    q_in = read_dat(path / "tb_data" / "tb_input_features.dat")
    q_out = read_dat(path / "tb_data" / "tb_output_predictions.dat")
    sim_in, sim_out = Simulator(to_onnx(model)).run([model.input.name, model.output.name], {"input": x})
    np.testing.assert_array_equal(q_in, sim_in.reshape(len(x), -1))  # C-major, as the model holds it
    np.testing.assert_array_equal(q_out, sim_out.reshape(len(x), -1))


def test_host_quantization_rule_matches_simulator(cnn):
    model, _ = cnn
    rng = np.random.default_rng(0)
    g = model.input.grid
    x = examples.random_inputs(rng, model, 16)
    ties = (np.arange(-130, 130).astype(np.float32) + 0.5) * np.float32(g.scale)
    x.reshape(-1)[: ties.size] = ties
    sim_in, _ = golden_vectors(model, x)
    np.testing.assert_array_equal(quantize_input(model, x), sim_in)


def test_golden_given_explicitly_and_integer_inputs(cnn, tmp_path):
    model, x = cnn
    q_in, q_out = golden_vectors(model, x)
    path = write_project(model, tmp_path / "a", HlsConfig(), q_in, q_out)
    assert np.array_equal(read_dat(path / "tb_data" / "tb_input_features.dat"), q_in.reshape(len(x), -1))
    path = write_project(model, tmp_path / "b", HlsConfig(), q_in)  # integers, golden computed
    assert np.array_equal(read_dat(path / "tb_data" / "tb_output_predictions.dat"), q_out.reshape(len(x), -1))
    one = write_project(model, tmp_path / "c", HlsConfig(), x[0])  # a single sample
    assert read_dat(one / "tb_data" / "tb_input_features.dat").shape == (1, q_in[0].size)


def test_without_inputs_no_vectors(cnn, tmp_path):
    model, _ = cnn
    path = write_project(model, tmp_path / "hls")
    assert not (path / "tb_data").exists()
    assert (path / "firmware" / "foldline_top.cpp").is_file()


def test_refusals(cnn, tmp_path):
    model, x = cnn
    with pytest.raises(ProjectError, match="shape"):
        write_project(model, tmp_path / "a", HlsConfig(), x[:, :, :3])
    with pytest.raises(ProjectError, match="golden outputs must be integers of shape"):
        write_project(model, tmp_path / "b", HlsConfig(), x, np.zeros((2, 5), np.int64))
    with pytest.raises(ProjectError, match="without the inputs"):
        write_project(model, tmp_path / "c", HlsConfig(), None, np.zeros((5, 5), np.int64))
    with pytest.raises(ProjectError, match="outside the input grid"):
        write_project(model, tmp_path / "d", HlsConfig(), np.full((1, 1, 12, 12), 500))
    with pytest.raises(HlsConfigError, match="unknown layer"):
        write_project(model, tmp_path / "e", HlsConfig(layer_reuse={"nope": 2}))
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_existing_directory(cnn, tmp_path):
    model, _ = cnn
    (tmp_path / "empty").mkdir()
    write_project(model, tmp_path / "empty")  # an empty directory is fine
    with pytest.raises(ProjectError, match="not empty"):
        write_project(model, tmp_path / "empty")
    (tmp_path / "empty" / "stale.txt").write_text("x")
    path = write_project(model, tmp_path / "empty", overwrite=True)
    assert not (path / "stale.txt").exists()


def test_signed_and_unsigned_types_and_widths(cnn, tmp_path):
    from exporters.integer_model import accumulator_analysis
    model, _ = cnn
    path = write_project(model, tmp_path / "hls")
    defines = (path / "firmware" / "defines.h").read_text()
    params = (path / "firmware" / "parameters.h").read_text()
    assert "typedef ap_int<8> input_t;" in defines and "typedef ap_int<8> result_t;" in defines
    assert "typedef ap_uint<8> conv1_t;" in defines  # hidden activations unsigned
    for name in ("conv1", "conv3", "fc6"):
        bits = accumulator_analysis(model, model.layer(name)).bits
        section = params.split(f"struct config_{name} {{")[1].split("};")[0]
        assert f"typedef ap_int<{bits}> accum_t;" in section
