"""A real HTTP server in a thread that stands in for a tracker: records each request, answers what the test says."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest


@dataclasses.dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclasses.dataclass
class Tracker:
    url: str
    received: list[Received] = dataclasses.field(default_factory=list)
    status: int = 201
    answer: dict[str, Any] = dataclasses.field(default_factory=dict)


def _handler(tracker: Tracker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            tracker.received.append(Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)))
            body = json.dumps(tracker.answer).encode()
            self.send_response(tracker.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    state = Tracker(url="")
    server = HTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
