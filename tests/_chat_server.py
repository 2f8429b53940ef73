"""A local OpenAI-compatible chat server the suite owns, scripted per test.

``POST /v1/chat/completions`` answers each request with the next step of a script
(the last step repeats): a ``Reply`` (text, or a function of the prompt, after an
optional delay) or a ``Failure`` (a status code, optionally with ``Retry-After``).
The server runs uvicorn in a thread of its own, on its own event loop and a free
port, so a client that blocked the test's event loop could not stall the server.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = (
    "ChatServer",
    "Failure",
    "Reply",
    "Seen",
    "good_answer",
    "running_chat_server",
)


@dataclass(frozen=True)
class Reply:
    """Answer with ``content`` (or ``content(prompt)``) after ``delay`` seconds."""

    content: str | Callable[[str], str]
    delay: float = 0.0


@dataclass(frozen=True)
class Failure:
    """Answer with an OpenAI-style error body and ``status``."""

    status: int
    retry_after: str | None = None
    retry_after_ms: str | None = None


Step = Reply | Failure


@dataclass(frozen=True)
class Seen:
    """A request the server received: when (``time.monotonic()``), and its body."""

    at: float
    body: dict[str, Any]
    authorization: str | None

    @property
    def prompt(self) -> str:
        return str(self.body["messages"][-1]["content"])


@dataclass
class ChatServer:
    """The running server: its URL, its script, what it saw."""

    base_url: str = ""
    script: list[Step] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _generation: int = 0

    def play(self, *steps: Step) -> None:
        """Answer the next requests with ``steps`` (the last repeats); forget the past."""
        with self._lock:
            self.script = list(steps)
            self.seen = []
            self.in_flight = 0
            self.max_in_flight = 0
            self._generation += 1

    def _next(self, body: dict[str, Any], authorization: str | None) -> tuple[Step, int]:
        with self._lock:
            self.seen.append(Seen(time.monotonic(), body, authorization))
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return step, self._generation

    def _done(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self.in_flight -= 1

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> JSONResponse:
            body = await request.json()
            step, generation = self._next(body, request.headers.get("authorization"))
            try:
                if isinstance(step, Failure):
                    headers = {"Retry-After": step.retry_after} if step.retry_after else {}
                    if step.retry_after_ms:
                        headers["retry-after-ms"] = step.retry_after_ms
                    error = {"message": f"scripted {step.status}", "type": "scripted"}
                    return JSONResponse({"error": error}, status_code=step.status, headers=headers)
                await _wait(request, step.delay)
                prompt = str(body["messages"][-1]["content"])
                text = step.content(prompt) if callable(step.content) else step.content
                return JSONResponse(_completion(body["model"], text))
            finally:
                self._done(generation)

        return app


async def _wait(request: Request, delay: float) -> None:
    """Sleep ``delay`` seconds, or until the client hangs up (its timeout expired)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + delay
    while (remaining := end - loop.time()) > 0:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(0.02, remaining))


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


@contextmanager
def running_chat_server() -> Iterator[ChatServer]:
    """Serve a ``ChatServer`` on a free local port for the duration of the block."""
    server = ChatServer()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        server.app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(
        target=uvicorn_server.run, kwargs={"sockets": [listener]}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not uvicorn_server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the local chat server did not start")
        time.sleep(0.01)
    server.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield server
    finally:
        uvicorn_server.should_exit = True
        thread.join(10)
        listener.close()


def _indices(prompt: str) -> list[int]:
    return [int(i) for i in re.findall(r'"index": (\d+)', prompt)]


def good_answer(prompt: str) -> str:
    """A valid reply to any of the adapter's prompts: at_risk, churn 0.42, value 77.5
    (a batch: value 77.5 plus the customer's index)."""
    if "JSON array" in prompt:
        return json.dumps(
            [
                {"index": i, "segment": "at_risk", "churn_risk": 0.42, "predicted_clv": 77.5 + i}
                for i in _indices(prompt)
            ]
        )
    answer: dict[str, object] = {"segment": "at_risk", "churn_risk": 0.42}
    if "predicted_clv" in prompt:
        answer["predicted_clv"] = 77.5
    return json.dumps(answer)
