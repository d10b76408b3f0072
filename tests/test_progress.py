"""toolchain.progress: plain lines in a log file, bars on a terminal, nothing when quiet."""

import io

from toolchain.progress import Progress, duration


def test_plain_progress_also_reports_every_30_seconds():
    log, seconds = io.StringIO(), iter(range(0, 10_000, 20))
    progress = Progress(file=log, clock=lambda: float(next(seconds)))   # each step takes 20 s
    progress.on_phase_start("pretrain", 1000)
    for step in range(1, 6):
        progress.on_step_end("pretrain", step, 1.0, 0.5)
    lines = log.getvalue().splitlines()
    # 10 % is 100 steps away; the 30-second rule reports at steps 2 and 4 (40 s after the last line)
    assert [line.split()[1] for line in lines[1:]] == ["2/1,000", "4/1,000"]


def test_a_terminal_gets_a_bar_not_lines():
    screen = io.StringIO()
    progress = Progress(file=screen, interactive=True)
    progress.on_phase_start("finetune", 50)
    for step in range(1, 51):
        progress.on_step_end("finetune", step, 0.25, 0.5)
    progress.on_phase_end("finetune", {"loss": 0.25})
    text = screen.getvalue()
    assert "\r" in text and "finetune: " in text and "/50 [" in text        # tqdm draws (and redraws) in place
    assert "/50 steps (" not in text                                       # no plain lines
    assert text.rstrip().endswith("finetune: done in 0.0 s: loss 0.2500")


def test_pipeline_phases_end_each_other_and_quiet_prints_nothing():
    log, now = io.StringIO(), iter([0.0, 2.0, 2.0, 14.0, 14.0]).__next__
    progress = Progress(file=log, prefix="export-fpga: ", interactive=False, clock=now)
    progress.phase("exporting ONNX")
    progress.phase("C simulation")
    progress.done()
    assert log.getvalue().splitlines() == [
        "export-fpga: exporting ONNX ...", "export-fpga: exporting ONNX: done in 2.0 s",
        "export-fpga: C simulation ...", "export-fpga: C simulation: done in 12 s"]
    quiet = io.StringIO()
    silent = Progress(quiet=True, file=quiet)
    silent.phase("exporting ONNX")
    silent.on_phase_start("train", 10)
    silent.on_step_end("train", 1, 1.0, 1.0)
    silent.done()
    assert quiet.getvalue() == ""


def test_durations_read_well():
    assert [duration(s) for s in (0.04, 9.96, 12.4, 185)] == ["0.0 s", "10.0 s", "12 s", "3 min 05 s"]
