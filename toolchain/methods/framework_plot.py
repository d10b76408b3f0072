"""The per-epoch choices of ``rule-framework`` / ``two-stage`` as a PNG (Ding et al.'s Fig. 3).

Top panel: every candidate's score after its trial epoch (the chosen one filled); bottom
panel: the step chosen each epoch. matplotlib with the Agg backend (no display needed).

>>> import tempfile, pathlib
>>> record = {"rule": "accuracy", "searched": True, "candidates": ["W8A8", "P0.25"],
...           "epochs": [{"epoch": 1, "step": "W8A8", "scores": {"W8A8": 80.0, "P0.25": 70.0}},
...                      {"epoch": 2, "step": "P0.25", "scores": {"P0.25": 75.0}}]}
>>> path = pathlib.Path(tempfile.mkdtemp()) / "choices.png"
>>> plot_choices(record, path, "cnn") == path and path.read_bytes()[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from exporters.staging import staging_file  # noqa: E402


def plot_choices(record: dict, path: Path, title: str = "") -> Path:
    """Write the figure of ``record`` (``Result.details["framework"]``) to ``path`` atomically."""
    path = Path(path)
    epochs = [e["epoch"] for e in record["epochs"]]
    labels = list(dict.fromkeys([*record["candidates"], *(e["step"] for e in record["epochs"])]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=(2, 1))
    for i, label in enumerate(labels):
        points = [(e["epoch"], e["scores"][label]) for e in record["epochs"] if label in e.get("scores", {})]
        chosen = [(e["epoch"], e["scores"][label]) for e in record["epochs"]
                  if e["step"] == label and label in e.get("scores", {})]
        color = f"C{i}"
        if points:
            top.plot(*zip(*points), "o--", color=color, mfc="none", label=label)
        if chosen:
            top.plot(*zip(*chosen), "o", color=color, ms=9)
    top.set_ylabel(f"score ({record['rule']})" if record.get("searched") else "validation top-1 (%)")
    top.legend(title="candidate (filled: chosen)", fontsize="small")
    top.grid(alpha=0.3)
    bottom.step(epochs, [labels.index(e["step"]) for e in record["epochs"]], where="mid", color="k")
    bottom.plot(epochs, [labels.index(e["step"]) for e in record["epochs"]], "ks")
    bottom.set_yticks(range(len(labels)), labels)
    bottom.set_ylim(-0.5, len(labels) - 0.5)
    bottom.set_xlabel("epoch")
    bottom.set_ylabel("chosen step")
    bottom.set_xticks(epochs)
    bottom.grid(alpha=0.3)
    kind = "rule-framework" if record.get("searched") else "two-stage"
    fig.suptitle(f"{title + ': ' if title else ''}{kind} choices per epoch")
    fig.tight_layout()
    tmp = staging_file(path, suffix=".png")
    try:
        fig.savefig(tmp, dpi=110)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


__all__ = ["plot_choices"]
