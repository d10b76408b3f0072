"""Print one of README.md's two set-up commands, exactly as written there.

    python3 .ci/readme_commands.py main    # the command that runs the main job on the shipped example
    python3 .ci/readme_commands.py test    # the command that installs and runs the tests

The "## Set up" section of README.md holds exactly two indented (4-space) command blocks:
the first runs the main job, the second the tests. `.ci/run` executes what this prints, so
README and CI cannot drift apart. Anything else in that section (more or fewer blocks) is an
error: README promises exactly two set-up commands.
"""

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def setup_commands(text: str) -> list[str]:
    match = re.search(r"^## Set up\n(.*?)(?=^## )", text, re.S | re.M)
    if not match:
        raise SystemExit("README.md has no '## Set up' section")
    blocks, current = [], []
    for line in match.group(1).splitlines():
        if line.startswith("    ") and line.strip():
            current.append(line[4:].rstrip().removesuffix("\\").strip())
        elif current:
            blocks.append(" ".join(current))
            current = []
    if current:
        blocks.append(" ".join(current))
    if len(blocks) != 2:
        raise SystemExit(f"README.md's 'Set up' section must hold exactly two commands, found {len(blocks)}")
    return blocks


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which not in ("main", "test"):
        raise SystemExit("usage: readme_commands.py main|test")
    print(setup_commands(README.read_text())[0 if which == "main" else 1])
