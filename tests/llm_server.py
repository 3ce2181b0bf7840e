"""A local OpenAI-compatible chat-completions server for tests and benchmarks (127.0.0.1, a free port).

``answer(body) -> str`` makes each reply's content; the server records every request (path, auth
header, body, arrival time), can fail the first ``fail_first`` requests with a 503, fail requests
``fail_when(body)`` picks, and wait a random ``latency`` (min, max seconds) before answering, like a
hosted model; ``most_in_flight`` is the most requests it answered at once. ``offline_answer`` answers as the offline author would, so a whole teacher run can go
through the hosted code path.
"""

from __future__ import annotations

import json
import random
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator, Optional


class OpenAICompatibleHandler(BaseHTTPRequestHandler):
    answer: Callable[[dict], str]
    seen: list
    fail_first: int = 0
    fail_when: Optional[Callable[[dict], bool]] = None
    latency: tuple[float, float] = (0.0, 0.0)
    lock = threading.Lock()
    in_flight = most_in_flight = 0  # requests being answered now / at most at once

    def do_POST(self):  # noqa: N802
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        try:
            self._answer(cls)
        finally:
            with cls.lock:
                cls.in_flight -= 1

    def _answer(self, cls) -> None:
        arrived = time.monotonic()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with cls.lock:
            cls.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body, "t": arrived})
            fail = cls.fail_first > 0 or bool(cls.fail_when and cls.fail_when(body))
            cls.fail_first = max(0, cls.fail_first - 1)
        if cls.latency[1] > 0:
            time.sleep(random.uniform(*cls.latency))
        if fail:
            self._send(503, {"error": {"message": "overloaded", "type": "server_error"}})
            return
        content = cls.answer(body)
        self._send(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 123, "completion_tokens": 17, "total_tokens": 140},
        })

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextmanager
def serving(answer: Callable[[dict], str], *, latency: tuple[float, float] = (0.0, 0.0)
            ) -> Iterator[tuple[str, type[OpenAICompatibleHandler]]]:
    """``(api_base, handler class)`` of a running server; the class holds ``seen`` and the failure knobs."""
    handler = type("Handler", (OpenAICompatibleHandler,), {
        "answer": staticmethod(answer), "seen": [], "latency": latency, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    finally:
        server.shutdown()
        server.server_close()


def teacher_role(body: dict) -> str:
    """The teacher agent a request is for: the one whose prompt file opens the system message."""
    from teacher_assets.agents.prompts import PROMPTS_DIR, load_prompt

    system = body["messages"][0]["content"]
    for path in sorted(PROMPTS_DIR.glob("*.md")):
        if system.startswith(load_prompt(path.stem).text):
            return f"teacher.{path.stem}"
    raise ValueError("no teacher prompt opens this system message")


def offline_answer(body: dict) -> str:
    """The offline author's reply to the same teacher conversation (through litellm, as the offline
    model would answer it), so a whole teacher run can go through the hosted code path."""
    from resources.llm.client import _litellm
    from resources.llm.offline import register

    register()
    reply = _litellm().completion(model="offline/author", messages=body["messages"], num_retries=0,
                                  metadata={"agent_role": teacher_role(body)})
    return reply.choices[0].message.content or ""
