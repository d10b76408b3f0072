"""Progress of long phases on stderr: for a user at a terminal, and for one reading a log file.

Why two forms: tqdm bars are drawn only on a terminal, so a run whose stderr went to a log
file (``fpga-compress ... 2> train.log``, CI, ``nohup``) used to print nothing for many
minutes. :class:`Progress` therefore draws

- on a terminal: a tqdm bar per phase of known length (running loss and batch accuracy
  in its postfix), with events and phase results written above it;
- anywhere else: plain lines — the phase's start and end (with its duration and results),
  and, for a phase of known length, a line at every :data:`REPORT_FRACTION` of its steps
  or every :data:`REPORT_SECONDS`, whichever comes first, with the mean loss and batch
  accuracy since the previous line.

``quiet`` prints nothing. A :class:`Progress` is a training callback
(:class:`toolchain.train.Callback`: ``on_phase_start``, ``on_step_end``, ``on_phase_end``,
``on_event``); a pipeline of steps without step counts (``export-fpga``) calls
:meth:`Progress.phase` for each step and :meth:`Progress.done` at the end.

>>> import io
>>> log, now = io.StringIO(), iter([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]).__next__
>>> p = Progress(file=log, clock=now, interactive=False)
>>> p.on_phase_start("train", 4)
>>> for step in range(1, 5):
...     p.on_step_end("train", step, 0.5, 0.75)
>>> p.on_phase_end("train", {"loss": 0.5})
>>> print(log.getvalue(), end="")
train: 4 steps
train: 1/4 steps (25 %), 0.5 s: loss 0.5000, batch accuracy 75.0 %
train: 2/4 steps (50 %), 1.0 s: loss 0.5000, batch accuracy 75.0 %
train: 3/4 steps (75 %), 1.5 s: loss 0.5000, batch accuracy 75.0 %
train: done in 2.5 s: loss 0.5000
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

from tqdm import tqdm

#: Plain progress lines come at least every this fraction of a phase's steps ...
REPORT_FRACTION = 0.1
#: ... and at least every this many seconds.
REPORT_SECONDS = 30.0


def duration(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min 05 s``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


class Progress:
    """Progress lines or bars on ``file`` (default stderr); see the module docstring.

    ``interactive``: draw bars (default: whether ``file`` is a terminal); ``prefix`` starts
    every plain line (e.g. ``"export-fpga: "``); ``clock``: seconds, for tests.
    """

    def __init__(self, quiet: bool = False, file=None, *, prefix: str = "", interactive: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.file = file or sys.stderr
        self.quiet = quiet
        self.interactive = self.file.isatty() if interactive is None else interactive
        self.prefix = prefix
        self._clock = clock
        self._bar: tqdm | None = None
        self._phase: str | None = None
        self._total = 0
        self._done = 0
        self._started = self._last = 0.0
        self._every = self._next_mark = 1
        self._loss = self._accuracy = 0.0
        self._window = 0

    # -- the training callback protocol ---------------------------------------------------
    def on_phase_start(self, phase: str, total_steps: int | None) -> None:
        self._close_bar()
        self._phase, self._total, self._done = phase, total_steps or 0, 0
        self._started = self._last = self._clock()
        self._loss = self._accuracy = 0.0
        self._window = 0
        self._every = self._next_mark = max(1, math.ceil(self._total * REPORT_FRACTION))
        if self.quiet:
            return
        if self.interactive and self._total:
            self._bar = tqdm(total=self._total, desc=phase, unit="step", file=self.file, leave=False,
                             dynamic_ncols=True)
        else:
            self._write(f"{phase}: {self._total:,} steps" if self._total else f"{phase} ...")

    def on_step_end(self, phase: str, step: int, loss: float, accuracy: float) -> None:
        self._done += 1
        self._loss += loss
        self._accuracy += accuracy
        self._window += 1
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.3f}", acc=f"{100 * accuracy:.1f}%", refresh=False)
            return
        now = self._clock()
        if self.quiet or self._done >= self._total:  # the phase's end line follows
            return
        if self._done >= self._next_mark or now - self._last >= REPORT_SECONDS:
            self._write(f"{phase}: {self._done:,}/{self._total:,} steps ({100 * self._done / self._total:.0f} %), "
                        f"{duration(now - self._started)}: loss {self._loss / self._window:.4f}, "
                        f"batch accuracy {100 * self._accuracy / self._window:.1f} %")
            self._last = now
            self._loss = self._accuracy = 0.0
            self._window = 0
            self._next_mark = (self._done // self._every + 1) * self._every

    def on_phase_end(self, phase: str, metrics: dict) -> None:
        self._close_bar()
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())
        if phase == self._phase:
            self._phase = None
            text = f"{phase}: done in {duration(self._clock() - self._started)}" + (f": {shown}" if shown else "")
        else:  # results of a phase that was never started (e.g. a method's final result)
            text = f"{phase}: {shown}" if shown else ""
        if text and not self.quiet:
            self._write(text)

    def on_event(self, phase: str, message: str) -> None:
        if not self.quiet:
            self._write(f"{phase}: {message}")

    # -- a pipeline of steps ----------------------------------------------------------------
    def phase(self, name: str) -> None:
        """End the open phase, if any, and start ``name`` (a step without a step count)."""
        self.done()
        self.on_phase_start(name, None)

    def done(self) -> None:
        """End the open phase, if any."""
        if self._phase is not None:
            self.on_phase_end(self._phase, {})

    # -- helpers ------------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        line = f"{self.prefix}{text}"
        if self.interactive:
            tqdm.write(line, file=self.file)
        else:
            print(line, file=self.file, flush=True)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
