"""Rules that score a compression step (Ding et al., section III-C): named presets and weighted sums.

A rule is a number to **maximise**, computed from one candidate's metrics after its trial epoch:

* presets: ``accuracy`` (= ``accuracy``), ``latency`` (= ``-latency_us``), ``dsp`` (= ``-dsp``),
  ``bops`` (= ``-bops``) — the paper's three rules (accuracy, FPGA latency, operation count)
  plus the DSP count;
* any other text is an arithmetic expression over the :data:`METRICS` names, numbers,
  ``+ - * /``, unary minus and parentheses, e.g. ``accuracy - 0.5*latency_us``.

The expression is parsed with :mod:`ast` and evaluated by walking a whitelist of node types
(never ``eval``): anything else — a call, an attribute, an unknown name — is a one-line
:class:`RuleError` before training starts.

>>> rule = parse_rule("accuracy - 0.5*latency_us")
>>> rule.score({"accuracy": 90.0, "latency_us": 4.0}), sorted(rule.metrics)
(88.0, ['accuracy', 'latency_us'])
>>> parse_rule("latency").score({"latency_us": 3.5})
-3.5
>>> try:
...     parse_rule("accuracy - speed")
... except RuleError as e:
...     print(e)
rule 'accuracy - speed': unknown metric 'speed' (metrics: accuracy, bops, bram, dsp, ff, latency_cycles, latency_us, lut, macs, sparsity)
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass

from exporters.errors import FoldlineError

#: Metric name -> what it is. ``accuracy`` is in percent so that weights read naturally
#: (``accuracy - 0.5*latency_us``: one microsecond is worth half a point of top-1).
METRICS = {
    "accuracy": "validation top-1 of the network after the trial epoch, percent (0-100)",
    "latency_us": "estimated FPGA latency, microseconds",
    "latency_cycles": "estimated FPGA latency, clock cycles",
    "dsp": "estimated DSP slices",
    "lut": "estimated LUTs",
    "ff": "estimated flip-flops",
    "bram": "estimated BRAM18 blocks",
    "bops": "bit operations per sample (sum of MACs x weight bits x input activation bits)",
    "macs": "multiply-accumulates per sample",
    "sparsity": "fraction of prunable channels removed (0-1)",
}
#: The metrics that need the hardware estimate (the others are cheap).
HARDWARE_METRICS = frozenset({"latency_us", "latency_cycles", "dsp", "lut", "ff", "bram"})
PRESETS = {"accuracy": "accuracy", "latency": "-latency_us", "dsp": "-dsp", "bops": "-bops"}

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


class RuleError(FoldlineError):
    """A rule that cannot be parsed, or names a metric that does not exist."""


@dataclass(frozen=True)
class Rule:
    """A parsed rule: ``text`` as given, ``expression`` after presets, ``metrics`` it reads."""

    text: str
    expression: str
    tree: ast.expr
    metrics: frozenset[str]

    def score(self, values: Mapping[str, float]) -> float:
        """The rule's value for one candidate's metrics (a missing metric is a KeyError)."""
        return float(_evaluate(self.tree, values))

    @property
    def needs_hardware(self) -> bool:
        return bool(self.metrics & HARDWARE_METRICS)


def parse_rule(text: str) -> Rule:
    """A preset name or an expression over :data:`METRICS` (module docstring)."""
    expression = PRESETS.get(text.strip(), text)
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise RuleError(f"rule {text!r}: cannot parse it (expected a preset {', '.join(PRESETS)} or an "
                        "expression like 'accuracy - 0.5*latency_us')") from None
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in METRICS:
                raise RuleError(f"rule {text!r}: unknown metric {node.id!r} (metrics: {', '.join(sorted(METRICS))})")
            names.add(node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)) \
                    or not math.isfinite(node.value):
                raise RuleError(f"rule {text!r}: {node.value!r} is not a number")
        elif not isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Load, *_BINARY, *_UNARY)):
            raise RuleError(f"rule {text!r}: only numbers, metric names, + - * / and parentheses are allowed")
    return Rule(text, expression, tree, frozenset(names))


def _evaluate(node: ast.expr, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, values))
    left, right = _evaluate(node.left, values), _evaluate(node.right, values)
    if isinstance(node.op, ast.Div) and right == 0:
        return math.copysign(math.inf, left) if left else 0.0
    return _BINARY[type(node.op)](left, right)


__all__ = ["HARDWARE_METRICS", "METRICS", "PRESETS", "Rule", "RuleError", "parse_rule"]
