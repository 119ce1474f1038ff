"""`deconflict hotline send|inbox|reply|watch`: thin commands over `service.hotline`.

They work on a data directory, like the other commands (the token names the party);
`watch --url` follows a running server's SSE stream instead. `watch` prints each event
in the party's language, acknowledges delivery of what it showed, and heartbeats.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["add_parser"]


def _field(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("must be NAME=VALUE (VALUE as JSON, or plain text)")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


def _services_and_caller(args: argparse.Namespace) -> tuple[Any, Any]:
    from deconflict.cli import _caller, _open

    services = _open(args)
    return services, _caller(services, args)


def _line(event_type: str, data: dict[str, Any], seq: int) -> str:
    """One event as a terminal line (texts already in the party's language)."""
    if event_type == "message":
        m = data["message"]
        tag = "" if data.get("attempt", 1) == 1 else f" (sent again, attempt {data['attempt']})"
        replies = " | ".join(r["reply"] for r in data.get("replies", []))
        ask = f"  [reply: {replies}]" if replies else ""
        return (
            f"#{seq} {m['sent_at']} {m['code']} from {m['sender']} ({m['id']}){tag}\n    {data['text']}{ask}"
        )
    if event_type == "reply":
        what = f"{data['code']} {data['message']}"
        return f"#{seq} {data['replied_at']} {data['by']} replied to {what}: {data['text']}"
    if event_type == "delivered":
        return (
            f"#{seq} {data['delivered_at']} {data['code']} {data['message']} delivered to {data['recipient']}"
        )
    if event_type == "reply_overdue":
        contact = f", escalated to {data['contact']}" if data.get("contact") else ""
        return (
            f"#{seq} OVERDUE: no reply from {data['recipient']} to {data['code']} {data['message']}{contact}"
        )
    if event_type == "delivery_overdue":
        what = f"{data['code']} {data['message']} to {data['recipient']}"
        return f"#{seq} NOT DELIVERED: {what}, attempt {data['attempt']}"
    if event_type == "read_back_mismatch":
        wrong = ", ".join(
            f"{x['field']} {x['original']} read back as {x['read_back']}" for x in data["mismatches"]
        )
        return f"#{seq} READ-BACK MISMATCH on {data['refers_to']}: {wrong}"
    if event_type == "party_down":
        return f"#{seq} PARTY DOWN: {data['party']} silent since {data['last_heartbeat']}"
    if event_type == "party_up":
        return f"#{seq} PARTY UP: {data['party']}"
    return f"#{seq} {event_type}: {json.dumps(data, ensure_ascii=False)}"


def cmd_send(args: argparse.Namespace) -> int:
    from deconflict.cli import _print_json
    from deconflict.service.hotline import message_json

    services, who = _services_and_caller(args)
    fields = dict(args.field)
    to = args.to or None
    sent = services.hotline.send(who, args.code, to, fields)
    print(services.hotline.text(sent.message, who.language))
    _print_json({"message": message_json(sent.message), "receipt": sent.receipt.leaf_index})
    return 0


def cmd_inbox(args: argparse.Namespace) -> int:
    from deconflict.cli import _print_json
    from deconflict.model.geojson import format_time
    from deconflict.service.hotline import delivery_json, message_json

    services, who = _services_and_caller(args)
    for m, deliveries in services.hotline.messages(who, args.box, args.limit):
        if args.json:
            _print_json({**message_json(m), "deliveries": [delivery_json(d) for d in deliveries]})
            continue
        state = "; ".join(
            f"{d.recipient}: "
            + ("delivered" if d.delivered_at else "not delivered")
            + (f", replied {d.reply}" if d.reply else (", reply OVERDUE" if d.reply_overdue_at else ""))
            for d in deliveries
        )
        print(f"{format_time(m.sent_at)} {m.code} {m.sender} -> {', '.join(m.recipients)} ({m.id}) [{state}]")
        print(f"    {services.hotline.text(m, who.language)}")
    return 0


def cmd_reply(args: argparse.Namespace) -> int:
    from deconflict.model.geojson import format_time

    services, who = _services_and_caller(args)
    d, receipt = services.hotline.reply(who, args.message, args.reply)
    print(
        f"replied {d.reply} to {args.message} at {format_time(d.replied_at) if d.replied_at else '?'};"
        f" log index {receipt.leaf_index}"
    )
    return 0


def _local_events(
    args: argparse.Namespace,
) -> tuple[Iterator[tuple[int, str, dict[str, Any]]], Callable[[str], None], Callable[[], None]]:
    """Follow the party's persisted sequence in the store (any process may write it)."""
    services, who = _services_and_caller(args)
    hotline = services.hotline

    def events() -> Iterator[tuple[int, str, dict[str, Any]]]:
        seq = args.after
        while True:
            found = hotline.events(who.id, seq, 100)
            for e in found:
                seq = e.seq
                yield e.seq, e.type, dict(e.data)
            if not found:
                time.sleep(args.poll_s)

    return events(), lambda mid: hotline.delivered(who, mid) and None, lambda: hotline.heartbeat(who) and None


def _remote_events(
    args: argparse.Namespace,
) -> tuple[Iterator[tuple[int, str, dict[str, Any]]], Callable[[str], None], Callable[[], None]]:
    """Follow the server's SSE stream (reconnecting with Last-Event-ID)."""
    token = args.token or os.environ.get("DECONFLICT_TOKEN") or ""
    base = args.url.rstrip("/")

    def post(path: str) -> None:
        req = urllib.request.Request(base + path, method="POST", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10):
            pass

    def events() -> Iterator[tuple[int, str, dict[str, Any]]]:
        seq = args.after
        while True:
            req = urllib.request.Request(
                base + "/v1/hotline/stream",
                headers={
                    "Authorization": f"Bearer {token}",
                    "Last-Event-ID": str(seq),
                    "Accept": "text/event-stream",
                },
            )
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    data = ""
                    for raw in resp:
                        line = raw.decode("utf-8").rstrip("\n")
                        if line.startswith("data: "):
                            data = line[6:]
                        elif line == "" and data:
                            event = json.loads(data)
                            data = ""
                            seq = int(event["seq"])
                            yield seq, event["type"], event["data"]
            except OSError as exc:
                print(f"stream lost ({exc}); reconnecting after #{seq}", file=sys.stderr)
                time.sleep(1)

    return (
        events(),
        lambda mid: post(f"/v1/hotline/messages/{mid}/delivered"),
        lambda: post("/v1/hotline/heartbeat"),
    )


def cmd_watch(args: argparse.Namespace) -> int:
    events, deliver, beat = (_remote_events if args.url else _local_events)(args)
    if not args.no_heartbeat:
        beat()
    last_beat = time.monotonic()
    shown = 0
    for seq, kind, data in events:
        print(_line(kind, data, seq), flush=True)
        if kind == "message" and not args.no_ack:
            deliver(data["message"]["id"])
        shown += 1
        if args.count and shown >= args.count:
            break
        if not args.no_heartbeat and time.monotonic() - last_beat >= args.heartbeat_s:
            beat()
            last_beat = time.monotonic()
    return 0


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    hotline = sub.add_parser("hotline", help="coded messages between parties").add_subparsers(
        dest="hotline_command", required=True, metavar="SUBCOMMAND", help="send, inbox, reply or watch"
    )

    def token(p: argparse.ArgumentParser) -> None:
        p.add_argument("--token", default=None, help="the party's API token (default: $DECONFLICT_TOKEN)")

    p = hotline.add_parser("send", help="send a coded message (its text is shown in your language)")
    common(p)
    token(p)
    p.add_argument("code", help="a catalogue code, e.g. IDENTITY_QUERY, CHANNEL_CHECK, FREE_TEXT")
    p.add_argument("--to", action="append", default=[], help="recipient party id (repeat); READ_BACK: omit")
    p.add_argument(
        "--field", action="append", type=_field, default=[], help="NAME=VALUE, VALUE as JSON or text (repeat)"
    )
    p.set_defaults(func=cmd_send)

    p = hotline.add_parser("inbox", help="your messages, newest first, in your language")
    common(p)
    token(p)
    p.add_argument(
        "--box", choices=["in", "out", "all"], default="in", help="received (default), sent, or both"
    )
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=cmd_inbox)

    p = hotline.add_parser("reply", help="answer a message with one of its code's replies")
    common(p)
    token(p)
    p.add_argument("message", help="the message id")
    p.add_argument("reply", help="e.g. WILCO, UNABLE, STANDBY, ROGER, MINE, NOT_MINE, UNKNOWN")
    p.set_defaults(func=cmd_reply)

    p = hotline.add_parser(
        "watch", help="print your stream in your language, acknowledge delivery, heartbeat"
    )
    common(p)
    token(p)
    p.add_argument("--url", default=None, help="follow a server's SSE stream (default: the data directory)")
    p.add_argument("--after", type=int, default=0, help="the last event number you have (default 0: all)")
    p.add_argument("--count", type=int, default=0, help="stop after this many events (default: never)")
    p.add_argument("--no-ack", action="store_true", help="do not acknowledge delivery")
    p.add_argument("--no-heartbeat", action="store_true", help="do not send heartbeats")
    p.add_argument("--heartbeat-s", type=float, default=30.0, help="heartbeat period (default 30)")
    p.add_argument(
        "--poll-s", type=float, default=0.5, help="data directory: how often to look (default 0.5)"
    )
    p.set_defaults(func=cmd_watch)
