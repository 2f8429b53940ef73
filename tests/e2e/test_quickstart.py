"""docs/quickstart.md, followed step by step in a fresh directory, the CLI import included.

The page's file blocks are saved as the reader is told to, its step-3 program runs
beside them, then its shell lines run verbatim in a shell; the customer they import
carries the host's own fields, read back through the service.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

from pytest_examples import find_examples

from linkbay_customers import bootstrap
from tests.e2e._shell import cli_environment, run_shell

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "quickstart.md"
EXAMPLES = list(find_examples(PAGE))
# The shell blocks (pytest-examples finds only Python ones).
SHELL_BLOCKS = re.findall(r"^```bash\n(.*?)^```$", PAGE.read_text(), re.MULTILINE | re.DOTALL)


def test_the_quickstart_runs_and_the_cli_imports_the_hosts_fields(tmp_path: Path) -> None:
    work = tmp_path / "shop"
    work.mkdir()
    environment = cli_environment(tmp_path)
    files = {e.prefix_settings()["file"]: e for e in EXAMPLES if "file" in e.prefix_settings()}
    assert sorted(files) == ["main.py", "shop_models.py"]
    for name, example in files.items():
        (work / name).write_text(example.source)
    programs = [
        e for e in EXAMPLES if e.prefix.startswith("python") and "file" not in e.prefix_settings()
    ]
    assert len(programs) == 1
    (work / "step3.py").write_text(programs[0].source)
    printed = run_shell([sys.executable, "step3.py"], work, environment)
    assert printed.splitlines()[0] == "1 Rossi SRL 120"

    shell = [block for block in SHELL_BLOCKS if "linkbay-customers import" in block]
    assert len(shell) == 1
    output = run_shell(["bash", "-e", "-c", shell[0]], work, environment)
    assert "1 created" in output
    assert "0 rejected" in output

    sys.path.insert(0, str(work))
    sys.modules.pop("shop_models", None)  # this page's, not another test's
    try:
        from shop_models import models  # type: ignore[import-not-found]

        async def read() -> tuple[object, object]:
            container = bootstrap(f"sqlite+aiosqlite:///{work / 'shop.db'}", models=models)
            try:
                service = container.customer_service()
                anna = await service.get_customer_by_email("tenant_123", "anna@example.com")
                return anna.extra["company_name"], anna.extra["loyalty_points"]
            finally:
                await container.storage().close()

        assert asyncio.run(read()) == ("Bianchi SpA", 40)
    finally:
        sys.path.remove(str(work))
        sys.modules.pop("shop_models", None)

    # The export reads the same models, and so includes the host's fields.
    export = "linkbay-customers export 2 -t tenant_123 --database-url sqlite+aiosqlite:///shop.db"
    exported = run_shell([*export.split(), "--models", "shop_models:models"], work, environment)
    profile = json.loads(exported)["customer"]
    assert (profile["email"], profile["company_name"], profile["loyalty_points"]) == (
        "anna@example.com",
        "Bianchi SpA",
        40,
    )
