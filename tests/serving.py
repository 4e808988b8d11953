"""Starting and stopping an app server on a free loopback port, for the tests that need a real one."""

from __future__ import annotations

import subprocess

import pytest

from dealmodel.proxy import free_port  # noqa: F401  (the tests' free loopback port)
from dealmodel.serve import answers


def wait_until_serving(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    """Wait for the server's health check; fail the test with the server's output if it never answers."""
    if answers(url, seconds):
        return
    proc.kill()
    pytest.fail("the server did not start: " + (proc.stdout.read() if proc.stdout else ""))


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # team mode's proxy stops its app processes first
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
