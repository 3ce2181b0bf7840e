"""A local OpenAI-compatible chat endpoint for tests: a handler class answers, this serves it."""

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def send_chat_completion(handler: BaseHTTPRequestHandler, model: str, content: str,
                         prompt_tokens: int, completion_tokens: int) -> None:
    """Write one ``chat.completion`` reply whose message is ``content``."""
    data = json.dumps({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextmanager
def serving(handler_class: type[BaseHTTPRequestHandler]):
    """The handler on 127.0.0.1 (a free port) in a thread; yields the ``/v1`` API base."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
