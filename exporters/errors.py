"""Errors a user can cause, and how every Foldline CLI ends on them.

Every error raised for bad input derives from :class:`FoldlineError` (the simulator's
``SimulatorError`` too), so one ``except`` in :func:`run_cli` covers every CLI: it prints
``PROG: error: <one line>`` and returns exit code 2. A user stopping a run (Ctrl-C,
``kill``/``timeout``'s SIGTERM, a closed terminal's SIGHUP) raises :class:`Interrupted`
(a ``KeyboardInterrupt``) wherever the program is, so ``finally`` and
``except BaseException`` clean-up runs before the CLI prints ``PROG: interrupted`` and
returns ``128 + signal`` (130 for Ctrl-C, 143 for SIGTERM), as a shell reports a killed
command.

This module imports nothing of Foldline: the simulator may import it.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable

EXIT_USER_ERROR = 2
#: Signals that stop a CLI cleanly (SIGINT already raises KeyboardInterrupt by itself).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class FoldlineError(Exception):
    """Base of every error Foldline raises for bad input (never for its own bugs)."""


class ModelError(FoldlineError):
    """An integer model that breaks the integer contract (names the layer and the rule)."""


class AccumulatorOverflowError(ModelError):
    """A layer whose proven accumulator bound does not fit the allowed width."""


class Interrupted(KeyboardInterrupt):
    """The user stopped the run with ``signum`` (SIGTERM or SIGHUP; Ctrl-C stays a plain
    KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, _frame) -> None:
    raise Interrupted(signum)


def one_line(exc: BaseException) -> str:
    """``str(exc)`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(exc).split())


def run_cli(prog: str, body: Callable[[], int], debug: bool = False) -> int:
    """Run a CLI's ``body`` and return its exit code, ending every user-caused failure the same way.

    ``FoldlineError`` (and ``OSError``: a permission, a full disk) -> one line on stderr,
    exit 2 (``debug`` re-raises it with its traceback instead); an interruption ->
    ``PROG: interrupted``, exit ``128 + signal``; ``SystemExit`` (argparse, ``--help``) ->
    its code. SIGTERM and SIGHUP raise :class:`Interrupted` while ``body`` runs.
    """
    handlers = {}
    if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
        handlers = {sig: signal.signal(sig, _raise_interrupted) for sig in STOP_SIGNALS if sig != signal.SIGINT}
    try:
        return body()
    except FoldlineError as exc:
        if debug:
            raise
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        if debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{prog}: error: {exc.strerror or one_line(exc)}{where}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USER_ERROR)
    finally:
        for sig, previous in handlers.items():
            signal.signal(sig, previous)
