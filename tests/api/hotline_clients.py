"""Real stream clients for the hotline tests: SSE over httpx streaming, WebSocket over
the `websockets` library. Each reads one event at a time, failing after a timeout."""

from __future__ import annotations

import json
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

TIMEOUT_S = 10.0


class SSE:
    """``GET /v1/hotline/stream`` as a browser's EventSource would read it."""

    def __init__(self, url: str, token: str, last_event_id: int | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.client = httpx.Client(base_url=url, timeout=TIMEOUT_S)
        self._cm = self.client.stream("GET", "/v1/hotline/stream", headers=headers)
        self.response = self._cm.__enter__()
        assert self.response.status_code == 200, self.response.read()
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self._lines = self.response.iter_lines()

    def next(self) -> dict[str, Any]:
        """The next event: {"id", "event", "data"} (comments and `retry:` skipped)."""
        event: dict[str, Any] = {}
        for line in self._lines:
            if line == "":
                if "data" in event:
                    return event
                event = {}
            elif line.startswith(":") or line.startswith("retry:"):
                continue
            else:
                name, _, value = line.partition(": ")
                event[name] = int(value) if name == "id" else json.loads(value) if name == "data" else value
        raise AssertionError("the stream ended")

    def close(self) -> None:
        self._cm.__exit__(None, None, None)
        self.client.close()

    def __enter__(self) -> SSE:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WS:
    """``/v1/hotline/ws``: one JSON frame per event."""

    def __init__(self, url: str, token: str, after: int = 0) -> None:
        ws_url = url.replace("http://", "ws://") + f"/v1/hotline/ws?after={after}"
        self._cm = connect(
            ws_url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=TIMEOUT_S
        )
        self.conn: ClientConnection = self._cm.__enter__()

    def next(self) -> dict[str, Any]:
        frame = json.loads(self.conn.recv(timeout=TIMEOUT_S))
        assert isinstance(frame, dict)
        return frame

    def send(self, value: dict[str, Any]) -> None:
        self.conn.send(json.dumps(value))

    def close(self) -> None:
        self._cm.__exit__(None, None, None)

    def __enter__(self) -> WS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def until(read: Any, predicate: Any, limit: int = 50) -> dict[str, Any]:
    """Read events until one matches (failing after `limit`)."""
    for _ in range(limit):
        event = read()
        if predicate(event):
            return event  # type: ignore[no-any-return]
    raise AssertionError("no matching event")
