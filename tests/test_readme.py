"""Every example in the README runs as written on a fresh clone (in a scratch copy of its files)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _cli_commands() -> list[str]:
    """The indented `dealmodel ...` commands of the README, continuation lines joined."""
    commands, current = [], ""
    for line in README.splitlines():
        text = line.strip()
        if current:
            current += " " + text.rstrip("\\").strip()
            if not text.endswith("\\"):
                commands.append(current)
                current = ""
        elif line.startswith("    dealmodel "):
            body = text.split("  #")[0].strip() if not text.endswith("\\") else text
            if body.endswith("\\"):
                current = body.rstrip("\\").strip()
            else:
                commands.append(body)
    return commands


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("readme")
    for folder in ("sample_deals", "examples"):
        shutil.copytree(ROOT / folder, where / folder)
    return where


def test_the_readme_has_the_examples_this_test_runs():
    commands = _cli_commands()
    assert len(commands) >= 10 and any(c.startswith("dealmodel negotiate") for c in commands)
    assert len(_python_blocks()) >= 1


@pytest.mark.parametrize("command", _cli_commands(), ids=lambda c: " ".join(c.split()[:2]))
def test_each_readme_command_runs_as_written(command, scratch):
    exe = str(Path(sys.executable).with_name("dealmodel"))
    line = exe + command[len("dealmodel"):]
    done = subprocess.run(["bash", "-c", line], cwd=scratch, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    for out in re.findall(r"--out (\S+)", command) + re.findall(r"> (\S+)", command):
        assert (scratch / out).stat().st_size > 0, out


def test_the_readme_python_runs_as_written(scratch):
    for block in _python_blocks():
        done = subprocess.run([sys.executable, "-c", block], cwd=scratch, capture_output=True, text=True,
                              timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, (block[:200], done.stderr[-3000:])
