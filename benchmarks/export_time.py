"""How long `export-fpga --example` takes (goal: under 30 s on 2 cores), per stage.

    python3 benchmarks/export_time.py

Runs the real command line in a subprocess (cold start included), with and without the
HLS C simulation, and prints the wall times and their ratio measured in this run.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "toolchain.export_cli", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        full = timed(["--example", "-o", str(Path(tmp) / "a")])
        no_hls = timed(["--example", "-o", str(Path(tmp) / "b"), "--hls", "none"])
    print(f"export-fpga --example (with g++ C simulation): {full:.1f} s  [goal < 30 s]")
    print(f"export-fpga --example --hls none:               {no_hls:.1f} s")
    print(f"ratio with-csim/without: {full / no_hls:.2f}")


if __name__ == "__main__":
    main()
