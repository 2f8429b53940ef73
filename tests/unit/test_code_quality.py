"""Lint and strict typing hold on every checkout, as part of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True
    )


def test_ruff_finds_nothing_to_fix() -> None:
    result = _run("ruff", "check", "src", "adapters", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_formatting_is_applied() -> None:
    result = _run("ruff", "format", "--check", "src", "adapters", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_python_examples_in_the_docs_are_formatted() -> None:
    result = _run("ruff", "format", "--check", "README.md", "docs")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_passes_on_the_core_and_the_adapters() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
