"""A small C++ emitter: config structs from dataclasses, constant tables, headers.

Python renders only data — config structs, weight tables, typedefs and call lines — never a
kernel body (those live in ``cpp/foldline/*.h``). A config struct is a dataclass whose fields
carry their C++ kind in the field metadata (:func:`typedef`, :func:`count`, :func:`integer`):

>>> from dataclasses import dataclass
>>> @dataclass
... class Demo:
...     accum_t: str = typedef("accumulator")
...     n_out: int = count("outputs")
>>> print(render_struct("config_demo", Demo("ap_int<12>", 3)))
struct config_demo {
    typedef ap_int<12> accum_t;  // accumulator
    static constexpr unsigned n_out = 3;  // outputs
};
>>> print(render_table("b", "ap_int<12>", [1, -2, 3]))
static const ap_int<12> b[3] = {1, -2, 3};
"""

from __future__ import annotations

import re
from dataclasses import field, fields

_KINDS = ("typedef", "unsigned", "int", "bool")


def typedef(doc: str):
    """A dataclass field rendered as ``typedef <value> <name>;``."""
    return field(metadata={"kind": "typedef", "doc": doc})


def count(doc: str):
    """A dataclass field rendered as ``static constexpr unsigned <name> = <value>;``."""
    return field(metadata={"kind": "unsigned", "doc": doc})


def integer(doc: str):
    """A dataclass field rendered as ``static constexpr int <name> = <value>;``."""
    return field(metadata={"kind": "int", "doc": doc})


def flag(doc: str):
    """A dataclass field rendered as ``static constexpr bool <name> = true|false;``."""
    return field(metadata={"kind": "bool", "doc": doc})


def ap_int(bits: int, signed: bool = True) -> str:
    """``ap_int<bits>`` or ``ap_uint<bits>``."""
    if bits < 1:
        raise ValueError(f"bit width must be >= 1, got {bits}")
    return f"ap_{'' if signed else 'u'}int<{bits}>"


def index_bits(n: int) -> int:
    """Unsigned width holding 0..n-1 (at least 1)."""
    return max(1, (n - 1).bit_length())


def render_struct(name: str, config) -> str:
    """``struct name { ... };`` with one member per dataclass field, in field order."""
    lines = [f"struct {name} {{"]
    for f in fields(config):
        kind, doc = f.metadata.get("kind"), f.metadata.get("doc", "")
        if kind not in _KINDS:
            raise TypeError(f"{type(config).__name__}.{f.name} has no C++ kind in its metadata")
        value = getattr(config, f.name)
        if kind == "typedef":
            text = f"typedef {value} {f.name};"
        elif kind == "bool":
            text = f"static constexpr bool {f.name} = {'true' if value else 'false'};"
        else:
            value = int(value)
            if kind == "unsigned" and value < 0:
                raise ValueError(f"{name}::{f.name} is unsigned but {value}")
            text = f"static constexpr {kind} {f.name} = {value};"
        lines.append(f"    {text}" + (f"  // {doc}" if doc else ""))
    lines.append("};")
    return "\n".join(lines)


def _literal(value) -> str:
    if isinstance(value, (tuple, list)):
        return "{" + ", ".join(_literal(v) for v in value) + "}"
    return str(int(value))


def render_table(name: str, ctype: str, values, per_line: int | None = None) -> str:
    """``static const ctype name[N] = {...};`` for ints or tuples of ints (struct entries)."""
    values = list(values)
    if per_line is None:
        per_line = 8 if values and isinstance(values[0], (tuple, list)) else 16
    if not values:
        raise ValueError(f"table {name} is empty (C++ has no zero-length arrays)")
    items = [_literal(v) for v in values]
    head = f"static const {ctype} {name}[{len(items)}] = {{"
    if len(items) <= per_line and sum(len(i) + 2 for i in items) < 80:
        return head + ", ".join(items) + "};"
    rows = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return head + "\n    " + ",\n    ".join(rows) + "\n};"


def header(guard: str, body: str, comment: str = "") -> str:
    """A header file with an include guard and an optional leading comment block."""
    guard = re.sub(r"[^A-Za-z0-9]", "_", guard).upper()
    top = "".join(f"// {line}".rstrip() + "\n" for line in comment.splitlines()) if comment else ""
    return f"{top}#ifndef {guard}\n#define {guard}\n\n{body.rstrip()}\n\n#endif\n"
