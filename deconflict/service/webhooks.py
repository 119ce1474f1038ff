"""Optional webhooks: each party's events POSTed, in order, to a URL it registered.

The body is the event as the streams send it (``{"seq", "at", "type", "data"}``, JSON);
headers ``X-Deconflict-Event: <seq>`` and ``X-Deconflict-Signature: sha256=<hex>``, the
HMAC-SHA256 of the exact body under the party's secret (given once, at registration).
An endpoint that answers 2xx has the event; anything else (or no answer in
`TIMEOUT_S`) is retried from that event on, after 1, 2, 4 ... up to `MAX_BACKOFF_S`
seconds, on the injected clock. Progress is kept in the store, so a restart resumes at
the first event not yet accepted. Sending happens outside any write transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

import orjson

from deconflict.errors import Forbidden, InvalidInput
from deconflict.model import Event, Party, Role, Webhook
from deconflict.service.hotline import Hotline
from deconflict.store.base import Writer, retrying

__all__ = ["MAX_BACKOFF_S", "Post", "Webhooks", "sign", "urllib_post"]

MAX_BACKOFF_S = 300.0
TIMEOUT_S = 5.0
BATCH = 100
_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s]*)?$")

Post = Callable[[str, bytes, dict[str, str]], int]
"""Send one request (url, body, headers); the HTTP status, or 0 when there was none."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def urllib_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - http(s) only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return 0


def event_body(e: Event) -> bytes:
    from deconflict.model.geojson import format_time

    return orjson.dumps({"seq": e.seq, "at": format_time(e.at), "type": e.type, "data": dict(e.data)})


class Webhooks:
    def __init__(self, hotline: Hotline, post: Post = urllib_post) -> None:
        self.hotline = hotline
        self.store = hotline.store
        self.post = post

    def register(self, caller: Party, url: str) -> tuple[Webhook, str]:
        """Register (or replace) the caller's webhook; it gets the events from now on.
        Returns it and its secret (shown once)."""
        if caller.role is Role.ADMIN:
            raise Forbidden("an admin has no event stream")
        if not isinstance(url, str) or len(url) > 2000 or not _URL.match(url):
            raise InvalidInput.one("url", "must be an http:// or https:// URL")
        secret = secrets.token_urlsafe(32)

        def write(w: Writer) -> Webhook:
            hook = Webhook(caller.id, url, secret, w.last_event_seq(caller.id))
            w.put_webhook(hook)
            return hook

        return retrying(self.store, write), secret

    def remove(self, caller: Party) -> bool:
        return retrying(self.store, lambda w: w.delete_webhook(caller.id))

    def get(self, caller: Party) -> Webhook | None:
        with self.store.read() as r:
            return next((h for h in r.webhooks() if h.party == caller.id), None)

    def run_once(self, now: datetime | None = None) -> int:
        """Send what is due to every endpoint; the number of events accepted."""
        now = now if now is not None else self.hotline.clock.now()
        with self.store.read() as r:
            due = [h for h in r.webhooks() if h.next_attempt is None or h.next_attempt <= now]
            pending = {h.party: r.events(h.party, h.delivered_seq, BATCH) for h in due}
        pending = {party: [self.hotline.readable(e) for e in found] for party, found in pending.items()}
        accepted = 0
        for hook in due:
            done = hook.delivered_seq
            failed = False
            for e in pending[hook.party]:
                body = event_body(e)
                headers = {
                    "Content-Type": "application/json",
                    "X-Deconflict-Event": str(e.seq),
                    "X-Deconflict-Signature": sign(hook.secret, body),
                }
                if 200 <= self.post(hook.url, body, headers) < 300:
                    done = e.seq
                    accepted += 1
                else:
                    failed = True
                    break
            if done == hook.delivered_seq and not failed:
                continue
            failures = hook.failures + 1 if failed else 0
            wait = min(2.0 ** (failures - 1), MAX_BACKOFF_S) if failed else 0.0
            next_attempt = now + timedelta(seconds=wait) if failed else None
            retrying(
                self.store,
                partial(_record_progress, hook=hook, done=done, failures=failures, at=next_attempt),
            )
        return accepted


def _record_progress(w: Writer, *, hook: Webhook, done: int, failures: int, at: datetime | None) -> None:
    """Keep how far `hook` got, unless it was removed or replaced meanwhile."""
    current = next((h for h in w.webhooks() if h.party == hook.party), None)
    if current is None or current.secret != hook.secret:
        return
    w.put_webhook(
        replace(
            current,
            delivered_seq=max(done, current.delivered_seq),
            failures=failures,
            next_attempt=at,
        )
    )
