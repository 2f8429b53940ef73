"""Commands run as a reader of the docs runs them: in a shell, in a fresh directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_environment(work: Path) -> dict[str, str]:
    """The environment of a reader's shell: the suite's interpreter, with the
    ``linkbay-customers`` command in ``work/bin``, and no setting of the suite's."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "LINKBAY_"))}
    # The console script of the CLI, run by the interpreter under test.
    bin_dir = work / "bin"
    bin_dir.mkdir()
    script = bin_dir / "linkbay-customers"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m linkbay_customers_cli "$@"\n')
    script.chmod(0o755)
    environment["PATH"] = f"{bin_dir}{os.pathsep}{environment.get('PATH', '')}"
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(ROOT / "adapters"), environment.get("PYTHONPATH", "")]
    )
    return environment


def run_shell(command: list[str], work: Path, environment: dict[str, str]) -> str:
    """Run ``command`` in ``work``; its standard output (it must exit 0)."""
    run = subprocess.run(
        command, cwd=work, env=environment, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout
