"""What the make targets install: the runtime alone to run the router, the test tools only to test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def planned(target: str) -> str:
    """The commands ``make`` would run for ``target`` from scratch (nothing is run)."""
    return subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def test_demo_run_and_mock_install_the_runtime_only_and_say_so() -> None:
    for target in ("demo", "run", "mock"):
        commands = planned(target)
        assert "install" in commands and "-e ." in commands
        assert "[dev]" not in commands and "[test]" not in commands, target
        assert "runtime only" in commands  # the line that tells a newcomer what is happening


def test_test_installs_the_test_tools_too() -> None:
    assert "-e '.[dev]'" in planned("test")
