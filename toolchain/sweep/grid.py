"""A sweep file (TOML) -> the list of resolved configurations it describes.

A resolved configuration is plain data, ``{"compress": {...}, "export": {...}}``: the
options of one ``fpga-compress`` run and of the ``export-fpga`` run on its checkpoint,
with TOML's own types (str, int, float, bool, lists, tables). The file:

- ``[compress]``, ``[export]``: options every configuration shares;
- ``[grid.compress]``, ``[grid.export]``: options whose *list* of values is crossed
  with every other list (the first axis varies slowest);
- ``[[configs]]``: extra configurations, each a ``compress = {...}`` and/or
  ``export = {...}`` laid over the shared options (not crossed with the grid).

A table value (``option = {steps_per_group = 50}``) is a namespace: the grid may vary one
of its keys (``option.steps_per_group = [50, 100]`` under ``[grid.compress]``). Key names
are normalised to ``snake_case`` (``weight-bits`` and ``weight_bits`` are one key), so a
configuration's :func:`config_key` does not depend on the spelling. Whether a key is a
real flag of the CLI is checked later, against the CLI's own parser (``flags.py``).

>>> import pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp(), "s.toml")
>>> _ = p.write_text('[compress]\\ndata = "synthetic"\\n[grid.compress]\\nseed = [0, 1]\\n')
>>> [c["compress"] for c in load_sweep(p)]
[{'data': 'synthetic', 'seed': 0}, {'data': 'synthetic', 'seed': 1}]
>>> canonical = b'{"compress":{"seed":0},"export":{}}'  # sorted keys, no spaces
>>> config_key({"export": {}, "compress": {"seed": 0}}) == hashlib.sha256(canonical).hexdigest()[:12]
True
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import math
import tomllib
from pathlib import Path

from exporters.errors import FoldlineError

#: The stages of one configuration, in the order they run.
STAGES = ("compress", "export")
TOP_LEVEL = (*STAGES, "grid", "configs")
#: Characters of the sha256 hex digest that name a configuration (48 bits: no collision
#: among the few thousand configurations a sweep holds).
KEY_LENGTH = 12


class SweepError(FoldlineError):
    """A sweep file or command line that cannot be run (one line, before anything runs)."""


def load_sweep(path) -> list[dict]:
    """Every configuration of the sweep file at ``path``, grid points first, duplicates dropped."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise SweepError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path}: invalid TOML: {exc}") from None
    return _configurations(path, doc)


def _configurations(path: Path, doc: dict) -> list[dict]:
    try:
        unknown = [k for k in doc if k not in TOP_LEVEL]
        if unknown:
            what = f"table [{unknown[0]}]" if isinstance(doc[unknown[0]], dict) else f"top-level key {unknown[0]!r}"
            raise SweepError(f"unknown {what} (expected {_names(TOP_LEVEL)})")
        shared = {stage: _table(doc, stage, stage) for stage in STAGES}
        points = _grid_points(doc["grid"], shared) if "grid" in doc else []
        extras = [_extra(entry, shared, i) for i, entry in enumerate(_array(doc.get("configs", [])))]
    except SweepError as exc:
        raise SweepError(f"{path}: {exc}") from None
    configs = points + extras
    if not configs:
        raise SweepError(f"{path}: no configurations (add a [grid] or [[configs]])")
    unique = {config_key(c): c for c in reversed(configs)}  # the first of equal ones wins ...
    return [c for c in configs if unique.get(config_key(c)) is c]  # ... in file order


def config_key(config: dict) -> str:
    """The configuration's name: a prefix of the sha256 of its canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def _names(keys) -> str:
    return ", ".join(f"[[{k}]]" if k == "configs" else f"[{k}]" for k in keys)


def _table(doc: dict, key: str, where: str) -> dict:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise SweepError(f"{where} must be a table, got {_show(value)}")
    return _normalised(value, where)


def _array(value) -> list:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SweepError("configs must be an array of tables ([[configs]])")
    return value


def _normalised(table: dict, where: str) -> dict:
    """``table`` with snake_case keys (recursively), every leaf a finite TOML scalar or list."""
    out = {}
    for key, value in table.items():
        name = key.strip().replace("-", "_")
        if name in out:
            raise SweepError(f"{where}: {key!r} and {name!r} are the same option")
        out[name] = _normalised(value, f"{where}.{name}") if isinstance(value, dict) else _checked(
            value, f"{where}.{name}")
    return out


def _checked(value, where: str):
    if isinstance(value, list):
        for i, v in enumerate(value):
            _checked(v, f"{where}[{i}]")
    elif isinstance(value, (datetime.date, datetime.time)):
        raise SweepError(f"{where}: a date or time is not an option value")
    elif isinstance(value, float) and not math.isfinite(value):
        raise SweepError(f"{where}: {value} is not a finite number")
    return value


def _grid_points(grid, shared: dict) -> list[dict]:
    if not isinstance(grid, dict):
        raise SweepError(f"grid must be a table, got {_show(grid)}")
    stray = [k for k in grid if k not in STAGES]
    if stray:
        raise SweepError(f"grid.{stray[0]}: grid values live under {_names('grid.' + s for s in STAGES)}")
    axes = []  # (stage, key path, values)
    for stage in STAGES:
        for keys, values in leaves(_table(grid, stage, f"grid.{stage}")):
            where = ".".join(("grid", stage, *keys))
            if not isinstance(values, list):
                raise SweepError(f"{where} must be a list of values, got {_show(values)} "
                                 f"(a fixed option goes in [{stage}])")
            if not values:
                raise SweepError(f"{where} is an empty list")
            if _has(shared[stage], keys):
                raise SweepError(f"{where} is also set in [{stage}]: fix it or vary it, not both")
            axes.append((stage, keys, values))
    if not axes:
        raise SweepError("[grid] has no list of values to cross")
    points = []
    for combo in itertools.product(*(values for _, _, values in axes)):
        config = _copy(shared)
        for (stage, keys, _), value in zip(axes, combo):
            _set(config[stage], keys, value, f"grid.{stage}")
        points.append(config)
    return points


def _extra(entry: dict, shared: dict, index: int) -> dict:
    where = f"configs[{index}]"
    stray = [k for k in entry if k not in STAGES]
    if stray:
        raise SweepError(f"{where}.{stray[0]}: a [[configs]] entry holds only "
                         f"{' and '.join(f'{s} = {{...}}' for s in STAGES)}")
    config = _copy(shared)
    for stage in STAGES:
        for keys, value in leaves(_table(entry, stage, f"{where}.{stage}")):
            _set(config[stage], keys, value, f"{where}.{stage}")
    return config


def leaves(table: dict, prefix: tuple = ()):
    """``(key path, value)`` for every non-table value of ``table``, depth first (an empty
    table counts as a value)."""
    for key, value in table.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def lookup(table: dict, keys: tuple):
    """The value at the key path ``keys`` of nested tables, None where it is not set."""
    for key in keys:
        if not isinstance(table, dict) or key not in table:
            return None
        table = table[key]
    return table


def _has(table: dict, keys: tuple) -> bool:
    """Whether ``table`` sets the option at ``keys`` (or a non-table value on the way to it)."""
    for key in keys:
        if not isinstance(table, dict):
            return True
        if key not in table:
            return False
        table = table[key]
    return True


def _set(table: dict, keys: tuple, value, where: str) -> None:
    for key in keys[:-1]:
        table = table.setdefault(key, {})
        if not isinstance(table, dict):
            raise SweepError(f"{where}: {key} is not a table in the shared options")
    table[keys[-1]] = value


def _copy(value):
    return json.loads(json.dumps(value))


def _show(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
