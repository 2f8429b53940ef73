"""docs/linkbay_ai.md's programs run as written against a local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests._chat_server import ChatServer, Reply, good_answer, running_chat_server

PAGE = Path(__file__).resolve().parents[2] / "docs" / "linkbay_ai.md"


def programs() -> list[str]:
    return re.findall(r"```python[^\n]*\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


@pytest.fixture
def server(chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> ChatServer:
    chat_server.play(Reply(good_answer))
    monkeypatch.setenv("OPENAI_BASE_URL", chat_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "docs-key")
    monkeypatch.setenv("LINKBAY_AI_MODEL", "docs-model")
    return chat_server


async def run(program: str) -> None:
    # The programs call asyncio.run, so they run on a thread of their own.
    code = compile(program, str(PAGE), "exec")
    await asyncio.to_thread(exec, code, {"__name__": "docs"})


def test_the_page_has_the_programs_these_tests_run() -> None:
    first, package = programs()
    assert "OpenAIChatClient(" in first
    assert "class AsyncOpenAIProvider(BaseProvider)" in package
    # test_docs_examples runs both against the local chat server and checks their output.
    assert PAGE.read_text().count('```python needs="chat"\n') == 2


async def test_the_first_program_asks_the_model_the_environment_names(
    server: ChatServer, capsys: pytest.CaptureFixture[str]
) -> None:
    await run(programs()[0])
    assert capsys.readouterr().out.splitlines()[0] == "{'linkbay_ai': 3}"
    assert {seen.body["model"] for seen in server.seen} == {"docs-model"}
    assert {seen.authorization for seen in server.seen} == {"Bearer docs-key"}


async def test_the_first_program_without_a_model_says_the_heuristics_scored(
    server: ChatServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_chat_server() as gone:
        monkeypatch.setenv("OPENAI_BASE_URL", gone.base_url)
    await run(programs()[0])
    sources, answers = capsys.readouterr().out.splitlines()
    assert sources == "{'heuristic': 3}"
    assert answers.split()[1::2] == ["heuristic", "heuristic"]


async def test_the_linkbay_ai_program_answers_through_the_real_orchestrator(
    server: ChatServer, capsys: pytest.CaptureFixture[str]
) -> None:
    await run(programs()[1])
    assert capsys.readouterr().out.splitlines() == ["linkbay_ai 3 0"]
    assert len(server.seen) == 3
    assert {seen.body["model"] for seen in server.seen} == {"docs-model"}
