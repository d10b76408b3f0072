"""exporters.staging: staged outputs, what killed runs leave behind, and the umask."""

import os
import stat
import subprocess
import sys

from exporters.staging import remove_stale, replace_dir, staging_dir, staging_file


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_folder_stranded_between_the_two_renames_is_put_back(tmp_path):
    """A run killed after moving the old output aside but before moving the new one in."""
    old = tmp_path / f".out.old-{_dead_pid()}-0000abcd"
    old.mkdir()
    (old / "report.json").write_text("the user's previous export")
    new = tmp_path / f".out.staging-{_dead_pid()}-x"
    new.mkdir()
    assert sorted(remove_stale(tmp_path / "out")) == sorted([old, new])
    assert (tmp_path / "out" / "report.json").read_text() == "the user's previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_old_folder_is_removed_when_the_target_exists(tmp_path):
    (tmp_path / "out").mkdir()
    old = tmp_path / f".out.old-{_dead_pid()}-0000abcd"
    old.mkdir()
    stale_file = tmp_path / f".m.pt.staging-{_dead_pid()}-q.tmp"
    stale_file.write_bytes(b"half")
    remove_stale(tmp_path / "out")
    remove_stale(tmp_path / "m.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_replace_dir_swaps_in_the_new_folder_and_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staged = staging_dir(target)
    assert staged.name.startswith(f".out.staging-{os.getpid()}-")
    (staged / "new.txt").write_text("new")
    replace_dir(staged, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_staged_folders_and_files_get_the_umask_permissions(tmp_path):
    previous = os.umask(0o002)
    try:
        folder, file = staging_dir(tmp_path / "d"), staging_file(tmp_path / "f.pt", suffix=".tmp")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o775      # mkdtemp alone: 0o700
    assert stat.S_IMODE(file.stat().st_mode) == 0o664        # mkstemp alone: 0o600
    assert file.name.startswith(f".f.pt.staging-{os.getpid()}-") and file.suffix == ".tmp"
