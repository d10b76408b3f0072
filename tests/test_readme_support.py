"""README's "What is supported" table against the registries: every integer layer type and every
QuantNet module type has its row, a backend's column says "refused" exactly where that backend's
table refuses the type, and every ATen op the PTQ column names has a handler."""

import re
from pathlib import Path

import torch

import toolchain.nn as tnn
from exporters.layers import LAYER_TYPES
from hls_templates.estimate.layers import COSTS
from hls_templates.hls4ml_bridge import REFUSED, STEPS
from hls_templates.kernels import KERNELS
from toolchain.ptq import _HANDLERS

COLUMNS = ("layer", "qat", "ptq", "integer", "templates", "hls4ml", "estimator", "pruning")


def support_rows() -> list[dict]:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## What is supported"):text.index("## Layout")]
    lines = [line for line in section.splitlines() if line.startswith("| ") and line.count("|") == 9]
    rows = [dict(zip(COLUMNS, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[1:]]
    assert rows and rows[0]["layer"].startswith("network input"), "the table's first row moved"
    return rows


def names(cell: str) -> set[str]:
    return set(re.findall(r"`([A-Za-z_0-9]+)`", cell))


def test_every_layer_type_and_module_type_has_a_row():
    rows = support_rows()
    assert set(LAYER_TYPES) <= set().union(*(names(r["integer"]) for r in rows))
    assert set(tnn.LAYER_TYPES) <= set().union(*(names(r["qat"]) for r in rows))


def test_backend_columns_say_refused_where_the_backend_refuses():
    for row in support_rows():
        types = {LAYER_TYPES[n] for n in names(row["integer"]) if n in LAYER_TYPES}
        if len(types) != 1 or "depthwise" in row["integer"]:
            continue  # a folded layer, or one that becomes another: stated in words
        (cls,) = types
        one_d = "(1-D)" in row["integer"]
        assert (row["hls4ml"] == "refused") == (cls in REFUSED or one_d), row["layer"]
        assert cls in STEPS or cls in REFUSED
        # the Input is the top's port and a free view an alias: neither has a kernel
        assert row["templates"] != "refused" and (cls in KERNELS or cls.is_free_view or not cls.INPUT_FIELDS)
        assert row["estimator"] != "refused" and cls in COSTS


def test_every_aten_op_the_ptq_column_names_has_a_handler():
    packets = {handler.overloadpacket for handler in _HANDLERS}
    for row in support_rows():
        for op in names(row["ptq"]):
            if hasattr(torch.ops.aten, op):
                assert getattr(torch.ops.aten, op) in packets, (row["layer"], op)
