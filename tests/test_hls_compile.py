"""Building the C simulation: ordinary layer sizes compile, tables are data, failures keep their log.

Issue 7: a 1568 -> 64 Linear made g++ -O2 crash on its weight table (an array of ap types,
built by a static initializer). The expected outputs come from the simulator (fpga_sim, via
``golden_vectors``), never from the C++ under test. Compile speed itself is measured in
benchmarks/csim_compile.py, not here.
"""

import logging
import shutil
import subprocess

import numpy as np
import pytest

from exporters.examples import Builder, random_inputs
from hls_templates import HlsConfig, run_csim, write_project
from hls_templates.csim import _log, ap_types_dir, compile_testbench
from hls_templates.errors import ToolError
from hls_templates.golden import golden_vectors, read_dat
from hls_templates.project import CSIM_STD, _package_file
from tests.test_tc_common import needs_gxx


def head(rng):
    """A LeNet/VGG-style classifier head: (32, 7, 7) -> Flatten -> Linear 64 -> Linear 10."""
    b = Builder(rng, (32, 7, 7))
    x = b.linear(b.flatten("input_q"), 64)
    b.linear(x, 10, relu=False, signed_out=True)
    return b.build("head")


@pytest.fixture(scope="module", params=["dataflow", "parallel"])
def head_csim(request, tmp_path_factory):
    rng = np.random.default_rng(7)
    model = head(rng)
    x = random_inputs(rng, model, 6)
    _, expected = golden_vectors(model, x)
    project = write_project(model, tmp_path_factory.mktemp(request.param) / "hls",
                            HlsConfig(architecture=request.param), x)
    return model, project, expected, run_csim(project)


@needs_gxx
def test_head_1568_to_64_equals_simulator(head_csim):
    model, project, expected, result = head_csim
    assert model.layer("fc2").weight.shape == (64, 1568)
    assert len(np.unique(expected)) >= 4, "outputs saturated: the comparison would prove little"
    assert result.ok, str(result)
    assert result.elements == expected.size
    rows = expected.reshape(len(expected), -1)
    assert np.array_equal(read_dat(project / "tb_data" / "tb_output_predictions.dat"), rows)  # the simulator's
    assert np.array_equal(read_dat(project / "tb_data" / "csim_results.log"), rows)  # what the C++ computed


@needs_gxx
@pytest.mark.skipif(shutil.which("nm") is None, reason="nm (binutils) is needed")
def test_weight_table_is_read_only_data(head_csim):
    """Under g++ the 100k-entry table is constant data (nm: r), not storage a static initializer
    fills at start-up (nm: b) as the ap-typed table was."""
    _, project, _, _ = head_csim
    symbols = subprocess.run(["nm", "-C", str(project / "csim" / "foldline_top.o")], capture_output=True, text=True,
                             check=True).stdout
    kinds = {line.split()[-1]: line.split()[-2] for line in symbols.splitlines() if len(line.split()) >= 2}
    for table in ("fc2_w", "fc2_b", "fc2_m", "fc2_n", "fc3_w"):
        assert kinds.get(table) == "r", f"{table}: nm kind {kinds.get(table)!r}"


STUB_AP_INT = """template <int W> struct ap_int {};
template <int W> struct ap_uint {};
"""

TABLE_TYPES = """#include <stdint.h>
#include <type_traits>
#include "foldline_types.h"
using foldline::table_element;
typedef foldline::nonzero<ap_int<4>, ap_uint<11>, ap_uint<7> > entry;
#ifdef __SYNTHESIS__
static_assert(std::is_same<table_element<ap_int<4> >::type, ap_int<4> >::value, "weights keep their ap type");
static_assert(std::is_same<table_element<ap_uint<16> >::type, ap_uint<16> >::value, "multipliers keep their ap type");
static_assert(std::is_same<decltype(entry::weight), ap_int<4> >::value, "");
static_assert(std::is_same<decltype(entry::tap), ap_uint<11> >::value, "");
static_assert(std::is_same<decltype(entry::out), ap_uint<7> >::value, "");
static_assert(std::is_same<foldline::multiplier_table_t, foldline::multiplier_t>::value, "");
static_assert(std::is_same<foldline::shift_table_t, foldline::shift_t>::value, "");
#else
static_assert(std::is_same<table_element<ap_int<4> >::type, int8_t>::value, "");
static_assert(std::is_same<table_element<ap_uint<8> >::type, uint8_t>::value, "");
static_assert(std::is_same<table_element<ap_uint<9> >::type, uint16_t>::value, "");
static_assert(std::is_same<table_element<ap_int<17> >::type, int32_t>::value, "");
static_assert(std::is_same<table_element<ap_int<33> >::type, int64_t>::value, "");
static_assert(std::is_same<table_element<ap_int<65> >::type, ap_int<65> >::value, "wider than 64 bits: the ap type");
static_assert(std::is_same<decltype(entry::tap), uint16_t>::value, "");
static_assert(std::is_same<foldline::multiplier_table_t, uint16_t>::value, "");
static_assert(std::is_same<foldline::shift_table_t, uint8_t>::value, "");
#endif
int main() { return 0; }
"""


@needs_gxx
@pytest.mark.parametrize("synthesis", [True, False])
def test_tables_are_ap_types_in_synthesis_and_builtins_in_csim(tmp_path, synthesis):
    """What synthesis sees is unchanged: with __SYNTHESIS__ every table element is its ap type
    (checked against stub ap headers: the open-source ones refuse __SYNTHESIS__)."""
    (tmp_path / "t.cpp").write_text(TABLE_TYPES)
    if synthesis:
        (tmp_path / "ap_int.h").write_text(STUB_AP_INT)
        (tmp_path / "hls_stream.h").write_text("")
        flags, include = ["-D__SYNTHESIS__"], str(tmp_path)
    else:
        flags, include = [], str(ap_types_dir())
    run = subprocess.run(["g++", CSIM_STD, "-fsyntax-only", *flags, "-I", str(_package_file("cpp/foldline")),
                          "-I", include, "t.cpp"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[:2000]


@needs_gxx
def test_failed_compile_names_a_log_that_exists(head_csim, tmp_path):
    _, project, _, _ = head_csim
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    weights = copy / "firmware" / "weights" / "fc2.h"
    weights.write_text(weights.read_text() + "static const int oops = not_declared;\n")
    with pytest.raises(ToolError, match=r"g\+\+ failed on firmware/foldline_top.cpp: .*not_declared") as caught:
        run_csim(copy)
    log = caught.value.log_path
    assert log == copy / "csim" / "build.log" and log.is_file()
    assert str(log) in str(caught.value)
    text = log.read_text()
    assert "not_declared" in text and "-c firmware/foldline_top.cpp" in text and "[exit 1]" in text
    assert not (copy / "csim" / "build.txt").exists()  # a later run rebuilds


def fake_project(root):
    (root / "firmware").mkdir(parents=True)
    (root / "firmware" / "parameters.h").write_text("static constexpr unsigned n_nonzero = 7;  // weights\n"
                                                    "static constexpr unsigned n_nonzero = 5;\n")
    (root / "net_test.cpp").write_text("")
    return root


def fake_compiler(tmp_path, body):
    script = tmp_path / "fake-cxx"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("body, match", [
    ('echo "boom.cpp:1: error: the fake compiler refuses"; exit 1', "the fake compiler refuses"),
    ("kill -9 $$", "killed by signal 9"),
])
def test_failing_compiler_keeps_its_log(tmp_path, body, match):
    project = fake_project(tmp_path / "prj")
    with pytest.raises(ToolError, match=match) as caught:
        compile_testbench(project, cxx=fake_compiler(tmp_path, body))
    log = caught.value.log_path
    assert log.is_file() and log.parent == project.resolve() / "csim" and str(log) in str(caught.value)
    assert "fake-cxx" in log.read_text()


def test_compile_says_what_it_compiles_and_how_long_it_took(tmp_path, caplog, monkeypatch, capsys):
    project = fake_project(tmp_path / "prj")
    cxx = fake_compiler(tmp_path, "exit 0")
    with caplog.at_level(logging.INFO, logger="hls_templates.csim"):
        compile_testbench(project, cxx=cxx)
    lines = [r.getMessage() for r in caplog.records if r.name == "hls_templates.csim"]
    assert lines[0] == f"compiling C simulation of {project.resolve().name} (12 nonzero weights)..."
    assert lines[1].startswith("compiled in ") and lines[1].endswith(" s")
    # an application that configured no logging still gets the plain lines, on stderr
    monkeypatch.setattr(_log, "hasHandlers", lambda: False)
    compile_testbench(project, cxx=cxx)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("compiling C simulation of ") and err[1].startswith("compiled in ")
