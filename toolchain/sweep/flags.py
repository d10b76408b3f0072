"""One stage's options (plain data from the sweep file) -> that CLI's command-line arguments.

The flag set is not written down here: each key is looked up in the CLI's own argparse
parser (its ``build_parser()``), so a flag added to ``fpga-compress`` or ``export-fpga``
is usable in a sweep at once, and a misspelt key fails before anything runs. How a value
becomes arguments depends on what the parser's action for ``--key-name`` expects:

==========================  =============================================================
value                       arguments
==========================  =============================================================
scalar                      ``--key-name VALUE``
``true`` / ``false``        a switch (``store_true`` ...): ``--key-name`` / nothing
list                        ``append`` action: ``--key-name A --key-name B``;
                            ``nargs="+"``/``"*"``/N: ``--key-name A B``; otherwise
                            one comma-separated value ``--key-name A,B``
table ``{K = V, ...}``      ``append`` action only: ``--key-name K=V`` per entry
==========================  =============================================================

Numbers are written as Python writes them (``0.5``, ``1e-05``), booleans inside lists and
tables as ``true``/``false``.

>>> import argparse
>>> p = argparse.ArgumentParser(prog="demo")
>>> _ = p.add_argument("--weight-bits", type=int); _ = p.add_argument("--quiet", action="store_true")
>>> _ = p.add_argument("--option", action="append"); _ = p.add_argument("--bits", nargs="+")
>>> to_argv(p, {"weight_bits": 4, "quiet": True, "option": {"steps": 50}, "bits": [4, 8]}, "compress")
['--weight-bits', '4', '--quiet', '--option', 'steps=50', '--bits', '4', '8']
"""

from __future__ import annotations

import argparse

from toolchain.sweep.grid import SweepError


def to_argv(parser: argparse.ArgumentParser, options: dict, where: str) -> list[str]:
    """The arguments that give ``parser``'s program ``options`` (``where`` names them in errors)."""
    # argparse has no public list of its actions; ``_actions`` has been stable since Python 3.2.
    actions = {flag: action for action in parser._actions for flag in action.option_strings}
    argv = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if flag not in actions:
            raise SweepError(f"{where}.{key}: {parser.prog} has no {flag} option")
        argv += _arguments(flag, actions[flag], value, f"{where}.{key}")
    return argv


def _arguments(flag: str, action: argparse.Action, value, where: str) -> list[str]:
    if action.nargs == 0:  # a switch: store_true, store_false, store_const, count
        if not isinstance(value, bool):
            raise SweepError(f"{where}: {flag} is a switch, give true or false (got {value!r})")
        return [flag] if value else []
    if isinstance(value, bool):
        raise SweepError(f"{where}: {flag} takes a value, not {str(value).lower()}")
    repeatable = isinstance(action, argparse._AppendAction)
    if isinstance(value, dict):
        if not repeatable:
            raise SweepError(f"{where}: a table, but {flag} is given once (a table needs a repeatable flag)")
        return [arg for k, v in value.items() for arg in (flag, f"{k}={_text(v, f'{where}.{k}')}")]
    if isinstance(value, list):
        texts = [_text(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if repeatable:
            return [arg for text in texts for arg in (flag, text)]
        if action.nargs in ("+", "*") or isinstance(action.nargs, int):
            return [flag, *texts]
        return [flag, ",".join(texts)]
    return [flag, _text(value, where)]


def _text(value, where: str) -> str:
    if isinstance(value, (list, dict)):
        raise SweepError(f"{where}: a nested list or table cannot be one command-line value")
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else repr(value)
