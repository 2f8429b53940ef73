"""Running pytest in a child process, as the tests that need a run of their own do."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ("run_pytest",)


def run_pytest(
    arguments: list[str],
    *,
    cwd: Path,
    environment: Mapping[str, str] | None = None,
    timeout: float = 600,
    at_least: int = 1,
) -> str:
    """Run ``python -m pytest -q -p no:cacheprovider ARGUMENTS`` in ``cwd``; its output.

    The parent's ``PYTEST_*`` variables are left out, so the child is a run of its
    own; ``environment`` adds to (or overrides) the rest of the parent's.

    Raises:
        AssertionError: the run failed, or passed fewer than ``at_least`` tests.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(environment or {})
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    passed = re.search(r"\b(\d+) passed\b", run.stdout)
    assert passed, run.stdout[-2000:]
    assert int(passed.group(1)) >= at_least, run.stdout[-2000:]
    return run.stdout
