"""The hotline's half of the SQLite backend (messages, deliveries, per-party events,
heartbeats), mixed into the shared SQL reader and writer (`deconflict.store.sql`), so
every engine runs the same portable statements."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import orjson

from deconflict.errors import AlreadyExists, NotFound
from deconflict.model import Delivery, Event, Message, PartyStatus, Webhook
from deconflict.store.codec import from_us, to_us
from deconflict.store.sqlparts import chunks, placeholders

__all__ = ["HotlineReads", "HotlineWrites"]

_DELIVERY_COLUMNS = (
    "message_id, recipient, sent_at_us, delivery_due_us, reply_due_us, attempts, delivered_at_us,"
    " delivery_overdue_at_us, replied_at_us, reply, reply_overdue_at_us, escalation_level, next_due_us"
)
_MESSAGE_COLUMNS = "id, code, sender, sent_at_us, refers_to, doc"
_BOXES = {"in", "out", "all"}


def _us(at: datetime | None) -> int | None:
    return None if at is None else to_us(at)


def _at(us: int | None) -> datetime | None:
    return None if us is None else from_us(int(us))


def _message(row: Any) -> Message:
    mid, code, sender, sent_at, refers_to, doc = row
    body = orjson.loads(doc)
    return Message(
        mid,
        code,
        sender,
        tuple(body["recipients"]),
        body["fields"],
        from_us(sent_at),
        refers_to,
        tuple(body.get("mismatches", ())),
    )


def _delivery(row: Any) -> Delivery:
    (mid, rcpt, sent, ddue, rdue, attempts, delivered, dover, replied, reply, rover, level, nxt) = row
    return Delivery(
        mid,
        rcpt,
        from_us(sent),
        from_us(ddue),
        _at(rdue),
        int(attempts),
        _at(delivered),
        _at(dover),
        _at(replied),
        reply,
        _at(rover),
        int(level),
        _at(nxt),
    )


def _delivery_row(d: Delivery) -> tuple[Any, ...]:
    return (
        d.message_id,
        d.recipient,
        to_us(d.sent_at),
        to_us(d.delivery_due),
        _us(d.reply_due),
        d.attempts,
        _us(d.delivered_at),
        _us(d.delivery_overdue_at),
        _us(d.replied_at),
        d.reply,
        _us(d.reply_overdue_at),
        d.escalation_level,
        _us(d.next_due),
    )


class HotlineReads:
    """Needs `_one` and `_all` of the reader it is mixed into."""

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def get_message(self, message_id: str) -> Message | None:
        row = self._one(f"SELECT {_MESSAGE_COLUMNS} FROM hotline_messages WHERE id = ?", (message_id,))  # noqa: S608
        return None if row is None else _message(row)

    def list_messages(
        self, party: str, *, box: str = "all", limit: int = 100, before: str | None = None
    ) -> list[Message]:
        if box not in _BOXES:
            raise ValueError(f"box must be one of {sorted(_BOXES)}")
        older, mark = "", []
        if before is not None:
            row = self._one("SELECT sent_at_us FROM hotline_messages WHERE id = ?", (before,))
            if row is None:
                raise NotFound("message", before)
            # (time, id) < the mark's, spelled so that the indexes by time serve it
            older = " AND {t} <= ? AND ({t} < ? OR {i} < ?)"
            mark = [row[0], row[0], before]
        # each side walks its index by time backwards and stops at `limit`: newest first
        # over a party's every message would sort them all
        received = (
            "SELECT message_id FROM (SELECT message_id FROM hotline_deliveries WHERE recipient = ?"  # noqa: S608
            + older.format(t="sent_at_us", i="message_id")
            + " ORDER BY sent_at_us DESC, message_id DESC LIMIT ?) AS r"
        )
        sent = (
            "SELECT id FROM (SELECT id FROM hotline_messages WHERE sender = ?"  # noqa: S608
            + older.format(t="sent_at_us", i="id")
            + " ORDER BY sent_at_us DESC, id DESC LIMIT ?) AS s"
        )
        side = [party, *mark, limit]
        ids, params = {
            "in": (received, side),
            "out": (sent, side),
            "all": (f"{received} UNION {sent}", side + side),
        }[box]
        # fixed clauses only; every value is bound
        rows = self._all(
            f"SELECT {_MESSAGE_COLUMNS} FROM hotline_messages WHERE id IN ({ids})"  # noqa: S608
            " ORDER BY sent_at_us DESC, id DESC LIMIT ?",
            [*params, limit],
        )
        return [_message(r) for r in rows]

    def deliveries_of(self, message_ids: Collection[str]) -> dict[str, list[Delivery]]:
        found: dict[str, list[Delivery]] = {mid: [] for mid in message_ids}
        for chunk in chunks(list(found)):
            rows = self._all(
                f"SELECT {_DELIVERY_COLUMNS} FROM hotline_deliveries"  # noqa: S608
                f" WHERE message_id IN ({placeholders(len(chunk))}) ORDER BY message_id, recipient",
                chunk,
            )
            for row in rows:
                d = _delivery(row)
                found[d.message_id].append(d)
        return found

    def get_deliveries(self, message_id: str) -> list[Delivery]:
        return self.deliveries_of([message_id])[message_id]

    def due_deliveries(self, at: datetime, limit: int | None = None) -> list[Delivery]:
        sql = (
            f"SELECT {_DELIVERY_COLUMNS} FROM hotline_deliveries"  # noqa: S608
            " WHERE next_due_us IS NOT NULL AND next_due_us <= ? ORDER BY next_due_us, message_id, recipient"
        )
        params: list[Any] = [to_us(at)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._all(sql, params)
        return [_delivery(r) for r in rows]

    def events(self, party: str, after_seq: int = 0, limit: int = 1000) -> list[Event]:
        rows = self._all(
            "SELECT seq, at_us, type, doc FROM hotline_events WHERE party = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (party, after_seq, limit),
        )
        return [Event(party, int(seq), from_us(at), kind, orjson.loads(doc)) for seq, at, kind, doc in rows]

    def last_event_seq(self, party: str) -> int:
        return self._last_event_seqs([party])[party]

    def _last_event_seqs(self, parties: Sequence[str]) -> dict[str, int]:
        """Each of `parties`' latest event number (0: none yet), in one statement a chunk
        (an index seek each)."""
        out: dict[str, int] = {}
        for part in chunks(parties):
            # only '(?)' placeholders are interpolated
            rows = self._all(
                "SELECT p.column1, (SELECT COALESCE(MAX(e.seq), 0) FROM hotline_events AS e"  # noqa: S608
                " WHERE e.party = p.column1) FROM (VALUES " + ",".join(["(?)"] * len(part)) + ") AS p",
                part,
            )
            out.update((party, int(last)) for party, last in rows)
        return out

    def party_statuses(self) -> list[PartyStatus]:
        rows = self._all("SELECT party, last_heartbeat_us, down_since_us FROM hotline_status ORDER BY party")
        return [PartyStatus(p, from_us(last), _at(down)) for p, last, down in rows]

    def webhooks(self) -> list[Webhook]:
        rows = self._all(
            "SELECT party, url, secret, delivered_seq, failures, next_attempt_us FROM hotline_webhooks"
            " ORDER BY party"
        )
        return [
            Webhook(p, u, s, int(seq), int(f), None if int(n) == 0 else from_us(n))
            for p, u, s, seq, f, n in rows
        ]


class HotlineWrites(HotlineReads):
    """Needs `_exec` of the writer it is mixed into."""

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def add_message(self, message: Message, deliveries: Sequence[Delivery]) -> None:
        self.add_messages([(message, deliveries)])

    def add_messages(self, messages: Sequence[tuple[Message, Sequence[Delivery]]]) -> None:
        ids = [m.id for m, _ in messages]
        if len(set(ids)) != len(ids):
            raise AlreadyExists("message", next(i for i in ids if ids.count(i) > 1))
        for part in chunks(ids):
            taken = self._one(
                f"SELECT id FROM hotline_messages WHERE id IN ({placeholders(len(part))})",  # noqa: S608
                part,
            )
            if taken is not None:
                raise AlreadyExists("message", taken[0])
        recipients = sorted({d.recipient for _, deliveries in messages for d in deliveries})
        known: set[str] = set()
        for part in chunks(recipients):
            rows = self._all(f"SELECT id FROM parties WHERE id IN ({placeholders(len(part))})", part)  # noqa: S608
            known.update(r[0] for r in rows)
        for r in recipients:
            if r not in known:
                raise NotFound("party", r)
        message_rows = []
        for m, _ in messages:
            doc: dict[str, Any] = {"recipients": list(m.recipients), "fields": m.fields}
            if m.mismatches:
                doc["mismatches"] = list(m.mismatches)
            message_rows.append(
                (m.id, m.code, m.sender, to_us(m.sent_at), m.refers_to, orjson.dumps(doc).decode())
            )
        self._many(
            f"INSERT INTO hotline_messages ({_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
            message_rows,
        )
        self._many(
            f"INSERT INTO hotline_deliveries ({_DELIVERY_COLUMNS})"  # noqa: S608
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_delivery_row(d) for _, deliveries in messages for d in deliveries],
        )

    def put_delivery(self, delivery: Delivery) -> None:
        key = (delivery.message_id, delivery.recipient)
        if self._one("SELECT 1 FROM hotline_deliveries WHERE message_id = ? AND recipient = ?", key) is None:
            raise NotFound("delivery", f"{delivery.message_id} to {delivery.recipient}")
        row = _delivery_row(delivery)
        self._exec(
            "UPDATE hotline_deliveries SET sent_at_us = ?, delivery_due_us = ?, reply_due_us = ?,"
            " attempts = ?, delivered_at_us = ?, delivery_overdue_at_us = ?, replied_at_us = ?, reply = ?,"
            " reply_overdue_at_us = ?, escalation_level = ?, next_due_us = ?"
            " WHERE message_id = ? AND recipient = ?",
            (*row[2:], *key),
        )

    def add_events(self, events: Sequence[Event]) -> list[Event]:
        """Number and keep events (their `seq` is ignored): each party's next numbers."""
        latest = self._last_event_seqs(list(dict.fromkeys(e.party for e in events)))
        next_seq = {party: last + 1 for party, last in latest.items()}
        out: list[Event] = []
        rows: list[tuple[Any, ...]] = []
        for e in events:
            seq = next_seq[e.party]
            next_seq[e.party] = seq + 1
            rows.append((e.party, seq, to_us(e.at), e.type, orjson.dumps(dict(e.data)).decode()))
            out.append(Event(e.party, seq, e.at, e.type, e.data))
        self._many("INSERT INTO hotline_events (party, seq, at_us, type, doc) VALUES (?, ?, ?, ?, ?)", rows)
        return out

    def put_party_status(self, status: PartyStatus) -> None:
        self._exec(
            "INSERT INTO hotline_status (party, last_heartbeat_us, down_since_us) VALUES (?, ?, ?)"
            " ON CONFLICT (party) DO UPDATE SET last_heartbeat_us = excluded.last_heartbeat_us,"
            " down_since_us = excluded.down_since_us",
            (status.party, to_us(status.last_heartbeat), _us(status.down_since)),
        )

    def put_webhook(self, hook: Webhook) -> None:
        if self._one("SELECT 1 FROM parties WHERE id = ?", (hook.party,)) is None:
            raise NotFound("party", hook.party)
        self._exec(
            "INSERT INTO hotline_webhooks (party, url, secret, delivered_seq, failures, next_attempt_us)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (party) DO UPDATE SET url = excluded.url,"
            " secret = excluded.secret, delivered_seq = excluded.delivered_seq,"
            " failures = excluded.failures, next_attempt_us = excluded.next_attempt_us",
            (
                hook.party,
                hook.url,
                hook.secret,
                hook.delivered_seq,
                hook.failures,
                0 if hook.next_attempt is None else to_us(hook.next_attempt),
            ),
        )

    def delete_webhook(self, party: str) -> bool:
        found = self._one("SELECT 1 FROM hotline_webhooks WHERE party = ?", (party,)) is not None
        if found:
            self._exec("DELETE FROM hotline_webhooks WHERE party = ?", (party,))
        return found
