"""Shared helpers: run the CLI as a user does, and write small model files."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradviz", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "COLUMNS": "120", "PYTHONIOENCODING": "utf-8"})


@pytest.fixture
def model(tmp_path: Path):
    """model(source) -> path of a model file holding the dedented source."""
    count = [0]

    def write(source: str) -> Path:
        count[0] += 1
        path = tmp_path / f"model{count[0]}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path
    return write
