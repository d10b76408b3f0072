"""Foldline's HLS backend: integer model -> HLS C++ project (Vitis/Vivado HLS), C simulation here.

>>> import numpy as np, tempfile
>>> from exporters.examples import mlp
>>> model = mlp(np.random.default_rng(0), features=(4, 3))
>>> path = write_project(model, tempfile.mkdtemp() + "/hls", HlsConfig(architecture="parallel"))
>>> sorted(p.name for p in path.iterdir())
['README.md', 'build_prj.tcl', 'firmware', 'foldline_top_test.cpp', 'project.tcl']
"""

from hls_templates.config import HlsConfig
from hls_templates.csim import CsimResult, Mismatch, dry_run_tcl, run_csim
from hls_templates.project import write_project
from hls_templates.estimate import estimate  # noqa: F401
from hls_templates.hls4ml_bridge import check_hls4ml_exact, write_hls4ml_project  # noqa: F401

__all__ = ["CsimResult", "HlsConfig", "Mismatch", "dry_run_tcl", "run_csim", "write_project"]
