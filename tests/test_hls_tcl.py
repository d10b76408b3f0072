"""build_prj.tcl under tclsh with stub HLS commands: the sequence, the switches, the files."""

import shutil

import numpy as np
import pytest

from exporters import examples
from hls_templates import HlsConfig, dry_run_tcl, write_project
from hls_templates.csim import STEPS
from hls_templates.errors import ProjectError

pytestmark = pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is needed")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    rng = np.random.default_rng(0)
    model = examples.cnn(rng)
    config = HlsConfig(part="xcvu9p-flga2104-2L-e", clock_ns=3.3, top="my_net")
    return write_project(model, tmp_path_factory.mktemp("tcl") / "hls", config, examples.random_inputs(rng, model, 2))


def names(calls):
    return [c[0] for c in calls]


def steps(calls):
    return [n for n in names(calls) if n in STEPS]


def test_default_sequence(project):
    calls = dry_run_tcl(project)
    assert names(calls)[:6] == ["open_project", "set_top", "add_files", "add_files", "add_files", "open_solution"]
    assert calls[0] == ("open_project", "-reset", "my_net_prj")
    assert ("set_top", "my_net") in calls
    assert ("set_part", "xcvu9p-flga2104-2L-e") in calls
    assert ("create_clock", "-period", "3.3", "-name", "default") in calls
    assert steps(calls) == ["csim_design", "csynth_design", "cosim_design"]
    assert calls[-1] == ("exit", "0")
    added = [c for c in calls if c[0] == "add_files"]
    assert ("add_files", "firmware/my_net.cpp", "-cflags", "-std=c++14") in added
    assert ("add_files", "-tb", "my_net_test.cpp", "-cflags", "-std=c++14") in added
    assert ("add_files", "-tb", "tb_data") in added


def test_all_four_steps_in_order(project):
    calls = dry_run_tcl(project, ["export=1"])
    assert steps(calls) == ["csim_design", "csynth_design", "cosim_design", "export_design"]
    assert ("export_design", "-format", "ip_catalog") in calls


@pytest.mark.parametrize("off", ["csim", "synth", "cosim"])
def test_each_step_switchable(project, off):
    step = {"csim": "csim_design", "synth": "csynth_design", "cosim": "cosim_design"}[off]
    calls = dry_run_tcl(project, [f"{off}=0", "export=1"])
    assert step not in names(calls)
    assert steps(calls) == [s for s in STEPS if s != step]


def test_arguments_in_one_string_like_the_tools_pass_them(project):
    calls = dry_run_tcl(project, ["csim=0 synth=1 cosim=0 export=0"])
    assert steps(calls) == ["csynth_design"]


def test_vivado_hls_variant(project):
    calls = dry_run_tcl(project, ["reset=0"], tool="vivado")
    assert calls[0] == ("open_project", "my_net_prj")
    assert ("open_solution", "solution1") in calls  # no -flow_target, no -reset
    assert ("add_files", "firmware/my_net.cpp", "-cflags", "-std=c++0x") in calls


def test_vitis_variant_sets_flow_target(project):
    calls = dry_run_tcl(project, tool="vitis")
    assert ("open_solution", "-reset", "solution1", "-flow_target", "vivado") in calls


def test_unknown_option_is_refused(project):
    with pytest.raises(ProjectError, match="unknown option 'bogus'"):
        dry_run_tcl(project, ["bogus=1"])
    with pytest.raises(ProjectError, match="must be 0 or 1"):
        dry_run_tcl(project, ["csim=yes"])


def test_missing_file_is_reported(project, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    shutil.rmtree(copy / "tb_data")
    with pytest.raises(ProjectError, match="'tb_data' does not exist"):
        dry_run_tcl(copy)


def test_runs_from_any_directory(project, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # build_prj.tcl cds to its own directory
    assert dry_run_tcl(project)[-1] == ("exit", "0")
