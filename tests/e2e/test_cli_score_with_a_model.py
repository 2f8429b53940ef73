"""``score --model``: a tenant scored by a chat model over a local OpenAI-compatible server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from linkbay_customers.testing import new_tenant_id
from tests._chat_server import ChatServer, Failure
from tests.e2e.test_cli_score import cli, customer, fill, row


def test_the_models_scores_are_counted_under_its_source(
    chat_server: ChatServer, sqlite_url: str
) -> None:
    tenant = new_tenant_id()
    ids = fill(sqlite_url, tenant)
    args = ["--tenant", tenant, "--database-url", sqlite_url]
    code, out, err = cli(
        "score", *args, "--model", "local-model", "--model-url", chat_server.base_url
    )
    assert code == 0, out + err
    assert row(out, "scored") == "5"
    assert row(out, "source linkbay_ai") == "5"
    assert "source heuristic" not in out
    assert row(out, "segment at_risk") == "5"
    assert "scored by the heuristics" not in out
    assert len(chat_server.seen) == 1  # one batch
    assert chat_server.seen[0].body["model"] == "local-model"
    assert customer(sqlite_url, tenant, ids[0]).score_source == "linkbay_ai"


def test_a_model_whose_replies_all_fall_back_is_not_reported_as_scoring(
    chat_server: ChatServer, sqlite_url: str
) -> None:
    chat_server.play(Failure(500))
    tenant = new_tenant_id()
    fill(sqlite_url, tenant)
    command = [sys.executable, "-m", "linkbay_customers_cli", "score", "--tenant", tenant]
    run = subprocess.run(
        [*command, "--database-url", sqlite_url, "--model", "local-model"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**_environment(), "OPENAI_BASE_URL": chat_server.base_url},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert row(run.stdout, "source heuristic") == "5"
    assert "source linkbay_ai" not in run.stdout
    assert "5 of 5 customers were scored by the heuristics, not by local-model" in run.stdout
    warnings = [line for line in run.stderr.splitlines() if "fell back" in line]
    assert len(warnings) == 1, run.stderr
    assert "the client raised InternalServerError" in warnings[0]
    assert len(chat_server.seen) == 3  # one batch, tried three times


def test_without_the_openai_package_the_model_option_names_the_extra(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # import openai raises ImportError
    monkeypatch.delitem(sys.modules, "linkbay_customers_linkbay_ai._openai", raising=False)
    tenant = new_tenant_id()
    code, out, err = cli("score", "--tenant", tenant, "--database-url", sqlite_url, "--model", "m")
    assert code != 0
    assert "pip install 'linkbay-customers[ai]'" in out + err


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LINKBAY_", "OPENAI_"))}
