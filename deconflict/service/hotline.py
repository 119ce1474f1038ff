"""Hotline use cases: send, list, read, acknowledge delivery, reply; heartbeats; and
`tick`, which retries, escalates and declares parties DOWN when their time comes.

Every change is made in one `store.write()` with the shared-record entries that record
it (message sent, delivered, replied, escalated; party DOWN and UP) and the events that
announce it on each party's stream, numbered per party: persisted before the caller
gets its answer, so a client that reconnects is replayed exactly what it missed. The
bell rings after the commit to wake this process's stream readers.

Time comes from the injected clock (`tick(now)` takes it from the caller), so tests
move time instead of sleeping; a deadline is met exactly when ``now`` reaches it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from deconflict.clock import Clock
from deconflict.errors import FieldError, Forbidden, InvalidInput, NotFound
from deconflict.hotline import catalogue as catalogue_module
from deconflict.hotline import fields as typed
from deconflict.hotline import rules
from deconflict.hotline.catalogue import Catalogue, Code, FieldType
from deconflict.hotline.render import render, render_reply
from deconflict.ids import new_id
from deconflict.ledger.canonical import JSONValue
from deconflict.ledger.entries import Kind
from deconflict.model import (
    SERVICE,
    Agreement,
    Circle,
    Conflict,
    Delivery,
    Event,
    Filing,
    Message,
    Party,
    PartyStatus,
    Role,
    State,
)
from deconflict.model.geojson import format_time
from deconflict.model.message import STANDBY
from deconflict.model.signature import SignedRequest
from deconflict.service.bell import Bell
from deconflict.service.ledger import Ledger, Receipt
from deconflict.service.signatures import admit, signed_member
from deconflict.store.base import Reader, Store, Writer, retrying

__all__ = ["Batch", "Composed", "Hotline", "Sent", "TickReport", "delivery_json", "message_json"]

_M_PER_DEG_LAT = 111_320.0
#: rendered texts kept for events read again (streams reconnecting, pages polled)
_TEXTS_KEPT = 10_000
MAX_MESSAGES = 1000  # a page of messages


#: A message composed but not stored: with its deliveries and its log entry.
Composed = tuple[Message, list[Delivery], bytes]


def _t(at: datetime | None) -> str | None:
    return None if at is None else format_time(at)


def message_json(m: Message) -> dict[str, Any]:
    """A message as plain values (the API's, the streams' and the log's form)."""
    out: dict[str, Any] = {
        "id": m.id,
        "code": m.code,
        "sender": m.sender,
        "recipients": list(m.recipients),
        "sent_at": format_time(m.sent_at),
        "fields": dict(m.fields),
    }
    if m.refers_to is not None:
        out["refers_to"] = m.refers_to
    if m.mismatches:
        out["mismatches"] = [dict(x) for x in m.mismatches]
    return out


def delivery_json(d: Delivery, contacts: Sequence[str] = ()) -> dict[str, Any]:
    level = d.escalation_level
    return {
        "recipient": d.recipient,
        "attempts": d.attempts,
        "delivery_due": _t(d.delivery_due),
        "delivered_at": _t(d.delivered_at),
        "delivery_overdue_at": _t(d.delivery_overdue_at),
        "reply_due": _t(d.reply_due),
        "replied_at": _t(d.replied_at),
        "reply": d.reply,
        "reply_overdue_at": _t(d.reply_overdue_at),
        "escalation_level": level,
        "escalation_contact": contacts[level - 1] if 0 < level <= len(contacts) else None,
    }


@dataclass
class Batch:
    """What one transaction announces and records, flushed into it at the end."""

    entries: list[bytes] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: parties' languages, looked up once per transaction
    languages: dict[str, str] = field(default_factory=dict)

    def event(self, party: str, at: datetime, kind: str, data: Mapping[str, Any]) -> None:
        self.events.append(Event(party, 0, at, kind, data))

    def flush(self, w: Writer, ledger: Ledger) -> list[Receipt]:
        if self.events:
            w.add_events(self.events)
        return ledger.append(w, self.entries) if self.entries else []


@dataclass(frozen=True, slots=True)
class Sent:
    message: Message
    deliveries: tuple[Delivery, ...]
    receipt: Receipt


@dataclass(frozen=True, slots=True)
class TickReport:
    retried: int = 0
    escalated: int = 0
    down: tuple[str, ...] = ()


class Hotline:
    #: deliveries a tick handles in one write transaction (see `tick`)
    TICK_CHUNK = 200

    def __init__(
        self,
        store: Store,
        agreement: Agreement,
        clock: Clock,
        ledger: Ledger,
        catalogue: Catalogue | None = None,
        bell: Bell | None = None,
    ) -> None:
        self.store = store
        self.agreement = agreement
        self.clock = clock
        self.ledger = ledger
        self.catalogue = catalogue or catalogue_module.default()
        self.bell = bell or Bell()
        #: texts of messages' deliveries by (message id, language), rendered on first read
        self._texts: dict[tuple[str, str], dict[str, Any]] = {}

    # -- rules ------------------------------------------------------------------------

    def code(self, name: Any) -> Code:
        code = self.catalogue.code(name) if isinstance(name, str) else None
        if code is None:
            raise InvalidInput.one("code", f"must be one of {', '.join(sorted(self.catalogue.codes))}")
        return code

    def contacts(self, party: str) -> tuple[str, ...]:
        signed = self.agreement.party(party)
        return signed.escalation if signed else ()

    def _next_due(self, d: Delivery) -> datetime | None:
        due: list[datetime] = []
        if d.delivered_at is None and d.attempts <= self.agreement.hotline.delivery_retries:
            due.append(d.delivery_due)
        if d.awaiting_reply and d.reply_due is not None:
            if d.reply_overdue_at is None or d.escalation_level < len(self.contacts(d.recipient)):
                due.append(d.reply_due)
        return min(due) if due else None

    def _scheduled(self, d: Delivery) -> Delivery:
        return replace(d, next_due=self._next_due(d))

    # -- events -----------------------------------------------------------------------

    @staticmethod
    def _language(r: Reader, party: str, cache: dict[str, str]) -> str:
        if party not in cache:
            found = r.get_party(party)
            cache[party] = found.language if found else "en"
        return cache[party]

    def _message_event(
        self, m: Message, d: Delivery, language: str, rendered: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The event of one delivery of `m`, as stored: the message and the recipient's
        language; `readable` adds the texts when the event is read. `rendered`: the
        parts that depend on the language only, kept across the deliveries of one message."""
        part = rendered.get(language) if rendered is not None else None
        if part is None:
            part = {"message": message_json(m), "language": self.catalogue.language(language).tag}
            if rendered is not None:
                rendered[language] = part
        return {
            **part,
            "attempt": d.attempts,
            "delivery_due": _t(d.delivery_due),
            "reply_due": _t(d.reply_due),
        }

    # -- composing (inside the caller's transaction) ----------------------------------

    def post(
        self,
        w: Writer,
        batch: Batch,
        code: Code,
        sender: str,
        recipients: Sequence[str],
        fields: Mapping[str, JSONValue],
        now: datetime,
        *,
        refers_to: str | None = None,
        mismatches: Sequence[rules.Mismatch] = (),
        evidence: SignedRequest | None = None,
    ) -> tuple[Message, list[Delivery]]:
        """Store a message to `recipients` and queue its entry and events in `batch`."""
        message, deliveries = self._compose(code, sender, recipients, fields, now, refers_to, mismatches)
        w.add_message(message, deliveries)
        self._queue(w, batch, message, deliveries, mismatches, evidence)
        return message, deliveries

    def post_many(
        self,
        w: Writer,
        batch: Batch,
        posts: Sequence[tuple[Code, str, Sequence[str], Mapping[str, JSONValue]]],
        now: datetime,
    ) -> list[tuple[Message, list[Delivery]]]:
        """`post` for each of `posts` (code, sender, recipients, fields), stored in batched
        statements (`Writer.add_messages`): a scan cycle's warnings at once."""
        return self.store_composed(w, batch, self.compose_many(posts, now))

    def compose_many(
        self, posts: Sequence[tuple[Code, str, Sequence[str], Mapping[str, JSONValue]]], now: datetime
    ) -> list[Composed]:
        """The messages of `posts` with their deliveries and log entries, stored nowhere
        yet (pure: a filing composes its warnings before the write lock)."""
        out: list[Composed] = []
        for code, sender, to, fields in posts:
            message, deliveries = self._compose(code, sender, to, fields, now)
            out.append((message, deliveries, self._sent_entry(message)))
        return out

    def store_composed(
        self, w: Writer, batch: Batch, composed: Sequence[Composed]
    ) -> list[tuple[Message, list[Delivery]]]:
        """Store messages `compose_many` made, in batched statements, and queue their
        events and entries in `batch`."""
        stored = [(message, deliveries) for message, deliveries, _ in composed]
        w.add_messages(stored)
        for message, deliveries, entry in composed:
            self._queue(w, batch, message, deliveries, (), None, entry)
        return stored

    def _compose(
        self,
        code: Code,
        sender: str,
        recipients: Sequence[str],
        fields: Mapping[str, JSONValue],
        now: datetime,
        refers_to: str | None = None,
        mismatches: Sequence[rules.Mismatch] = (),
    ) -> tuple[Message, list[Delivery]]:
        limits = rules.deadlines(code.pick(fields), self.agreement.hotline.deadlines)
        message = Message(
            new_id(),
            code.name,
            sender,
            tuple(recipients),
            dict(fields),
            now,
            refers_to,
            tuple(x.as_dict() for x in mismatches),
        )
        delivery_due, reply_due = now + timedelta(seconds=limits.delivery_s), rules.due(now, limits.reply_s)
        # a fresh copy falls due at the same times whoever receives it (only an overdue
        # reply's escalation depends on the recipient): schedule one, give all its time
        due = self._next_due(Delivery(message.id, "", now, delivery_due, reply_due)) if recipients else None
        deliveries = [Delivery(message.id, r, now, delivery_due, reply_due, next_due=due) for r in recipients]
        return message, deliveries

    def _queue(
        self,
        w: Reader,
        batch: Batch,
        message: Message,
        deliveries: Sequence[Delivery],
        mismatches: Sequence[rules.Mismatch],
        evidence: SignedRequest | None,
        entry: bytes | None = None,
    ) -> None:
        """The events and the log entry of a stored message, queued in `batch`
        (`entry`: the entry already made, for a message with no evidence)."""
        now = message.sent_at
        rendered: dict[str, dict[str, Any]] = {}
        for d in deliveries:
            batch.event(
                d.recipient,
                now,
                "message",
                self._message_event(message, d, self._language(w, d.recipient, batch.languages), rendered),
            )
        if mismatches:
            data = {
                "message": message.id,
                "refers_to": message.refers_to,
                "mismatches": list(message.mismatches),
            }
            for party in message.parties:
                batch.event(party, now, "read_back_mismatch", data)
        batch.entries.append(entry if entry is not None else self._sent_entry(message, evidence))

    def _sent_entry(self, message: Message, evidence: SignedRequest | None = None) -> bytes:
        """The MESSAGE_SENT log entry of `message`, with the sender's signature if it signed."""
        body = {**message_json(message), **signed_member(evidence)}
        return self.ledger.entry(Kind.MESSAGE_SENT, body, message.sent_at)

    def _audience(self, w: Reader, exclude: str, languages: dict[str, str]) -> list[str]:
        """Who hears of a party's activity: every other operator and observer (every
        party's language noted in `languages` on the way)."""
        parties = w.list_parties()
        languages.update((p.id, p.language) for p in parties)
        return [p.id for p in parties if p.id != exclude and p.role in (Role.OPERATOR, Role.OBSERVER)]

    @staticmethod
    def _notice_fields(filing: Filing) -> dict[str, JSONValue]:
        volumes = filing.volumes
        if len(volumes) == 1:
            area = typed.check_value(FieldType.AREA, _outline_json(volumes[0].outline), "area")
        else:
            area = _bbox_json([v.outline for v in volumes])
        return {
            "filing": filing.id,
            "kind": filing.kind,
            "area": area,
            "time_window": {"start": format_time(filing.time_start), "end": format_time(filing.time_end)},
            "altitude_band": {
                "lower_m": min(v.altitude_lower_m for v in volumes),
                "upper_m": max(v.altitude_upper_m for v in volumes),
            },
            "volumes": len(volumes),
        }

    def conflict_warnings(self, conflicts: Sequence[Conflict], now: datetime) -> list[Composed]:
        """The CONFLICT_WARNING of each conflict (to both its owners), composed, not stored."""
        warning = self.catalogue.codes["CONFLICT_WARNING"]
        posts: list[tuple[Code, str, Sequence[str], Mapping[str, JSONValue]]] = [
            (
                warning,
                SERVICE,
                sorted({f.a.owner, f.b.owner}),
                {
                    "conflict": c.id,
                    "filing": f.a.id,
                    "party_a": f.a.owner,
                    "other": f.b.id,
                    "party_b": f.b.owner,
                    "time_window": {"start": format_time(f.time_start), "end": format_time(f.time_end)},
                    "horizontal_separation": f.horizontal_separation_m,
                    "vertical_separation": f.vertical_separation_m,
                    "agreed_horizontal": f.separation.horizontal_m,
                    "agreed_vertical": f.separation.vertical_m,
                },
            )
            for c in conflicts
            for f in (c.finding,)
        ]
        return self.compose_many(posts, now)

    def on_filing(
        self,
        w: Writer,
        batch: Batch,
        filing: Filing,
        previous: Filing | None,
        warnings: Sequence[Composed],
        now: datetime,
    ) -> None:
        """The automatic messages of an accepted filing version, in its transaction:
        NOTICE_OF_ACTIVITY when filed or its volumes or kind changed, ACTIVITY_ACTIVATED,
        ACTIVITY_NONCONFORMING and ACTIVITY_ENDED on those states, and the CONFLICT_WARNINGs
        of its conflicts (`warnings`: made by `conflict_warnings`, before the write lock
        when it can be)."""
        audience = self._audience(w, filing.owner, batch.languages)
        changed = previous is None or previous.volumes != filing.volumes or previous.kind != filing.kind
        ref = {"filing": filing.id, "kind": filing.kind}
        codes = self.catalogue.codes
        posts: list[tuple[Code, str, Sequence[str], Mapping[str, JSONValue]]] = []
        if audience and changed and filing.live:
            posts.append((codes["NOTICE_OF_ACTIVITY"], filing.owner, audience, self._notice_fields(filing)))
        was = previous.state if previous else None
        for state, name in (
            (State.ACTIVATED, "ACTIVITY_ACTIVATED"),
            (State.NONCONFORMING, "ACTIVITY_NONCONFORMING"),
            (State.ENDED, "ACTIVITY_ENDED"),
        ):
            if audience and filing.state is state and was is not state:
                posts.append((codes[name], filing.owner, audience, ref))
        composed = [*self.compose_many(posts, now), *warnings]
        if composed:  # one statement each for all the messages and all their copies
            self.store_composed(w, batch, composed)

    def down_parties(self, r: Reader) -> set[str]:
        return {s.party for s in r.party_statuses() if not s.up}

    def _commit(self, batch: Batch) -> None:
        if batch.events:
            self.bell.ring()

    # -- use cases --------------------------------------------------------------------

    def _recipients(self, w: Reader, caller: Party, to: Any) -> list[str]:
        if not isinstance(to, list) or not to:
            raise InvalidInput.one("to", "must be a non-empty list of party ids")
        errors: list[FieldError] = []
        for i, pid in enumerate(to):
            party = w.get_party(pid) if isinstance(pid, str) else None
            if party is None:
                errors.append(FieldError(f"to[{i}]", f"no party {pid!r}"))
            elif pid == caller.id:
                errors.append(FieldError(f"to[{i}]", "a party does not send to itself"))
            elif party.role is Role.ADMIN:
                errors.append(FieldError(f"to[{i}]", "an admin takes no hotline messages"))
            elif pid in to[:i]:
                errors.append(FieldError(f"to[{i}]", f"{pid!r} is listed twice"))
        if errors:
            raise InvalidInput(errors)
        return list(to)

    def _check_references(
        self, w: Reader, caller: Party, code: Code, values: Mapping[str, JSONValue]
    ) -> None:
        errors: list[FieldError] = []
        for name, ftype in code.pick(values).fields.items():
            value = values[name]
            where = f"fields.{name}"
            if ftype is FieldType.FILING and w.get_filing(str(value)) is None:
                errors.append(FieldError(where, f"no filing {value!r}"))
            elif ftype is FieldType.PARTY and w.get_party(str(value)) is None:
                errors.append(FieldError(where, f"no party {value!r}"))
            elif ftype is FieldType.KIND and self.agreement.kind(str(value)) is None:
                errors.append(
                    FieldError(where, f"unknown kind (the agreement has: {', '.join(self.agreement.kinds)})")
                )
            elif ftype is FieldType.MESSAGE:
                found = w.get_message(str(value))
                if found is None or not found.involves(caller.id):
                    errors.append(FieldError(where, f"no message {value!r} of yours"))
        if errors:
            raise InvalidInput(errors)

    def send(
        self, caller: Party, code_name: Any, to: Any, fields: Any, *, evidence: SignedRequest | None = None
    ) -> Sent:
        """Send a coded message. READ_BACK goes to the original's sender (`to` may be
        None) and is compared with the original: every mismatch is flagged to both.
        `evidence` is the party's signature of the request, recorded with the message."""
        if caller.role is Role.ADMIN:
            raise Forbidden("an admin sends no hotline messages")
        code = self.code(code_name)
        values = typed.check(code, fields)
        now = self.clock.now()

        def write(w: Writer) -> tuple[Sent, Batch]:
            batch = Batch()
            admit(w, caller, evidence, now)
            self._check_references(w, caller, code, values)
            dest = to
            refers_to: str | None = None
            mismatches: list[rules.Mismatch] = []
            if code.name == "READ_BACK":
                original = w.get_message(str(values["message"]))
                assert original is not None  # checked above
                if caller.id not in original.recipients:
                    raise InvalidInput.one("fields.message", "only a recipient of a message reads it back")
                if original.sender == SERVICE:
                    raise InvalidInput.one(
                        "fields.message", "an automatic message is not read back (reply to it instead)"
                    )
                if dest is not None and dest != [original.sender]:
                    raise InvalidInput.one(
                        "to", f"a read-back goes to the original's sender, [{original.sender!r}]"
                    )
                dest = [original.sender]
                refers_to = original.id
                mismatches = rules.compare_read_back(original.fields, values)
            recipients = self._recipients(w, caller, dest)
            message, deliveries = self.post(
                w,
                batch,
                code,
                caller.id,
                recipients,
                values,
                now,
                refers_to=refers_to,
                mismatches=mismatches,
                evidence=evidence,
            )
            (receipt,) = batch.flush(w, self.ledger)
            return Sent(message, tuple(deliveries), receipt), batch

        sent, batch = retrying(self.store, write)
        self._commit(batch)
        return sent

    def _mine(self, r: Reader, caller: Party, message_id: str) -> Message:
        message = r.get_message(message_id)
        if message is None or not message.involves(caller.id):
            raise NotFound("message", message_id)
        return message

    def get(self, caller: Party, message_id: str) -> tuple[Message, list[Delivery]]:
        with self.store.read() as r:
            message = self._mine(r, caller, message_id)
            return message, r.get_deliveries(message_id)

    def messages(
        self, caller: Party, box: str = "all", limit: int = 100, before: str | None = None
    ) -> list[tuple[Message, list[Delivery]]]:
        """The caller's messages, newest first; a page with `before` (the id of the message
        the last page ended with) and `limit`."""
        if box not in ("in", "out", "all"):
            raise InvalidInput.one("box", "must be in, out or all")
        if not 1 <= limit <= MAX_MESSAGES:
            raise InvalidInput.one("limit", f"must be within [1, {MAX_MESSAGES}]")
        with self.store.read() as r:
            try:
                found = r.list_messages(caller.id, box=box, limit=limit, before=before)
            except NotFound:
                raise InvalidInput.one("before", "names no message") from None
            deliveries = r.deliveries_of([m.id for m in found])
            return [(m, deliveries[m.id]) for m in found]

    def text(self, message: Message, language: str) -> str:
        return render(self.catalogue, self.code(message.code), message.fields, language)

    def _delivery_of(self, w: Reader, caller: Party, message_id: str) -> tuple[Message, Delivery]:
        message = self._mine(w, caller, message_id)
        mine = [d for d in w.get_deliveries(message_id) if d.recipient == caller.id]
        if not mine:
            raise Forbidden(f"{caller.id!r} is not a recipient of message {message_id!r}")
        return message, mine[0]

    def _deliver(
        self,
        batch: Batch,
        message: Message,
        d: Delivery,
        now: datetime,
        evidence: SignedRequest | None = None,
    ) -> Delivery:
        d = self._scheduled(replace(d, delivered_at=now))
        body: dict[str, JSONValue] = {
            "id": message.id,
            "recipient": d.recipient,
            "attempts": d.attempts,
            **signed_member(evidence),
        }
        batch.entries.append(self.ledger.entry(Kind.MESSAGE_DELIVERED, body, now))
        data = {
            "message": message.id,
            "code": message.code,
            "recipient": d.recipient,
            "delivered_at": _t(now),
        }
        for party in message.parties:
            if party != d.recipient:
                batch.event(party, now, "delivered", data)
        return d

    def delivered(
        self, caller: Party, message_id: str, *, evidence: SignedRequest | None = None
    ) -> tuple[Delivery, Receipt | None]:
        """The recipient's client has the message (idempotent: the first time counts)."""
        now = self.clock.now()

        def write(w: Writer) -> tuple[Delivery, Receipt | None, Batch]:
            batch = Batch()
            message, d = self._delivery_of(w, caller, message_id)
            if d.delivered_at is not None:
                return d, None, batch
            admit(w, caller, evidence, now)
            d = self._deliver(batch, message, d, now, evidence)
            w.put_delivery(d)
            (receipt,) = batch.flush(w, self.ledger)
            return d, receipt, batch

        d, receipt, batch = retrying(self.store, write)
        self._commit(batch)
        return d, receipt

    def reply(
        self, caller: Party, message_id: str, reply: Any, *, evidence: SignedRequest | None = None
    ) -> tuple[Delivery, Receipt]:
        """The operator's answer, from the code's allowed set. STANDBY asks for time: the
        reply deadline starts again and a final answer is still due."""
        if not isinstance(reply, str):
            raise InvalidInput.one("reply", "must be a reply code such as ROGER")
        now = self.clock.now()

        def write(w: Writer) -> tuple[Delivery, Receipt, Batch]:
            batch = Batch()
            message, d = self._delivery_of(w, caller, message_id)
            code = self.code(message.code).pick(message.fields)
            rules.check_reply(code, reply)
            if d.reply is not None and d.reply != STANDBY:
                raise InvalidInput.one(
                    "reply", f"already answered {d.reply} at {format_time(d.replied_at or now)}"
                )
            if d.delivered_at is None:
                d = self._deliver(batch, message, d, now)
            limits = rules.deadlines(code, self.agreement.hotline.deadlines)
            reply_due = rules.due(now, limits.reply_s) if reply == STANDBY else d.reply_due
            d = self._scheduled(replace(d, reply=reply, replied_at=now, reply_due=reply_due))
            admit(w, caller, evidence, now)
            w.put_delivery(d)
            body = {"id": message.id, "by": caller.id, "reply": reply, **signed_member(evidence)}
            batch.entries.append(self.ledger.entry(Kind.MESSAGE_REPLIED, body, now))
            for party in message.parties:
                if party != caller.id:
                    lang = self._language(w, party, batch.languages)
                    batch.event(
                        party,
                        now,
                        "reply",
                        {
                            "message": message.id,
                            "code": message.code,
                            "by": caller.id,
                            "reply": reply,
                            "text": render_reply(self.catalogue, reply, lang),
                            "replied_at": _t(now),
                        },
                    )
            receipts = batch.flush(w, self.ledger)
            return d, receipts[-1], batch

        d, receipt, batch = retrying(self.store, write)
        self._commit(batch)
        return d, receipt

    # -- streams ----------------------------------------------------------------------

    def events(self, party: str, after_seq: int = 0, limit: int = 1000) -> list[Event]:
        """`party`'s events after `after_seq`, as its clients see them (`readable`)."""
        with self.store.read() as r:
            found = r.events(party, after_seq, limit)
        return [self.readable(e) for e in found]

    def readable(self, e: Event) -> Event:
        """A stored event as it is served: a message's delivery gets the text in the
        recipient's language, whether it is uncoded, and the replies it allows with
        their texts. Rendered on the way out, not in the write that sends the message
        (every filing sends messages; most are read once, some never): the log and the
        stored event keep the coded message, and the text follows from it and the
        catalogue. Events stored with their texts are served as they are."""
        data = e.data
        if e.type != "message" or "text" in data:
            return e
        message = data["message"]
        key = (message["id"], data["language"])
        texts = self._texts.get(key)
        if texts is None:
            code = self.code(message["code"])
            tag = data["language"]
            texts = {
                "text": render(self.catalogue, code, message["fields"], tag),
                "uncoded": code.uncoded,
                "replies": [{"reply": r, "text": render_reply(self.catalogue, r, tag)} for r in code.replies],
            }
            if len(self._texts) >= _TEXTS_KEPT:
                self._texts.clear()
            self._texts[key] = texts
        return replace(e, data={**data, **texts})

    def last_seq(self, party: str) -> int:
        with self.store.read() as r:
            return r.last_event_seq(party)

    # -- heartbeats -------------------------------------------------------------------

    def heartbeat(self, caller: Party) -> PartyStatus:
        """The caller's client is alive; a party that was DOWN is UP again for everyone."""
        now = self.clock.now()

        def write(w: Writer) -> tuple[PartyStatus, Batch]:
            batch = Batch()
            old = next((s for s in w.party_statuses() if s.party == caller.id), None)
            status = PartyStatus(caller.id, now, None)
            w.put_party_status(status)
            if old is not None and old.down_since is not None:
                data = {"party": caller.id, "up_at": _t(now), "down_since": _t(old.down_since)}
                for p in w.list_parties():
                    batch.event(p.id, now, "party_up", data)
                batch.entries.append(self.ledger.entry(Kind.PARTY_UP, data, now))
            batch.flush(w, self.ledger)
            return status, batch

        status, batch = retrying(self.store, write)
        self._commit(batch)
        return status

    def statuses(self) -> list[PartyStatus]:
        with self.store.read() as r:
            return r.party_statuses()

    # -- time -------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> TickReport:
        """Everything due at or before `now` (default: the clock's): retries of
        undelivered messages, escalation of unanswered ones (each at its exact due time,
        level by level), parties silent past the agreed period declared DOWN.

        Deliveries are taken `TICK_CHUNK` at a time, soonest due first, a write
        transaction each, so that a backlog (parties that neither read nor reply: every
        warning escalating) never holds the store's write lock, and the filings waiting
        on it, for long. Each chunk is committed whole; a chunk's deliveries next fall
        due after `now`, so the next chunk takes others."""
        now = now if now is not None else self.clock.now()
        rules_ = self.agreement.hotline
        with self.store.read() as r:
            pending = bool(r.due_deliveries(now, limit=1)) or any(
                s.up and s.last_heartbeat + timedelta(seconds=rules_.down_after_s) <= now
                for s in r.party_statuses()
            )
        if not pending:
            return TickReport()

        def write(w: Writer) -> tuple[TickReport, Batch, list[Delivery]]:
            batch = Batch()
            retried = escalated = 0
            down: list[str] = []
            messages: dict[str, Message] = {}
            chunk = w.due_deliveries(now, limit=self.TICK_CHUNK)
            for d in chunk:
                if d.message_id not in messages:
                    found = w.get_message(d.message_id)
                    assert found is not None
                    messages[d.message_id] = found
                m = messages[d.message_id]
                limits = rules.deadlines(self.code(m.code).pick(m.fields), rules_.deadlines)
                while d.next_due is not None and d.next_due <= now:
                    due = d.next_due
                    if (
                        d.delivered_at is None
                        and d.delivery_due == due
                        and d.attempts <= rules_.delivery_retries
                    ):
                        d = replace(
                            d,
                            attempts=d.attempts + 1,
                            delivery_overdue_at=d.delivery_overdue_at or due,
                            delivery_due=due + timedelta(seconds=limits.delivery_s),
                        )
                        retried += 1
                        lang = self._language(w, d.recipient, batch.languages)
                        batch.event(d.recipient, now, "message", self._message_event(m, d, lang))
                        data = {
                            "message": m.id,
                            "code": m.code,
                            "recipient": d.recipient,
                            "reason": "not_delivered",
                            "due": _t(due),
                            "attempt": d.attempts,
                        }
                        for party in m.parties:
                            if party != d.recipient:
                                batch.event(party, now, "delivery_overdue", data)
                        batch.entries.append(self.ledger.entry(Kind.ESCALATED, data, now))
                    else:
                        contacts = self.contacts(d.recipient)
                        level = min(d.escalation_level + 1, len(contacts))
                        d = replace(
                            d,
                            reply_overdue_at=d.reply_overdue_at or due,
                            escalation_level=level,
                            reply_due=due + timedelta(seconds=limits.reply_s or 0),
                        )
                        escalated += 1
                        data = {
                            "message": m.id,
                            "code": m.code,
                            "recipient": d.recipient,
                            "reason": "not_replied",
                            "due": _t(due),
                            "level": level,
                            "contact": contacts[level - 1] if level else None,
                        }
                        for party in m.parties:
                            batch.event(party, now, "reply_overdue", data)
                        batch.entries.append(self.ledger.entry(Kind.ESCALATED, data, now))
                    d = self._scheduled(d)
                w.put_delivery(d)
            everyone = [p.id for p in w.list_parties()]
            for s in w.party_statuses():
                since = s.last_heartbeat + timedelta(seconds=rules_.down_after_s)
                if s.up and since <= now:
                    w.put_party_status(replace(s, down_since=since))
                    data = {
                        "party": s.party,
                        "down_since": _t(since),
                        "last_heartbeat": _t(s.last_heartbeat),
                        "filings": rules_.down_filings.value,
                    }
                    for p in everyone:
                        batch.event(p, now, "party_down", data)
                    batch.entries.append(self.ledger.entry(Kind.PARTY_DOWN, data, now))
                    down.append(s.party)
            batch.flush(w, self.ledger)
            return TickReport(retried, escalated, tuple(down)), batch, chunk

        report = TickReport()
        taken: set[tuple[str, str]] = set()
        while True:
            part, batch, chunk = retrying(self.store, write)
            self._commit(batch)
            report = TickReport(
                report.retried + part.retried, report.escalated + part.escalated, report.down + part.down
            )
            keys = {(d.message_id, d.recipient) for d in chunk}
            # a chunk's deliveries next fall due after `now`: none comes back (were one
            # to, that would be a bug; stop rather than loop on it)
            if len(chunk) < self.TICK_CHUNK or keys & taken:
                return report
            taken = keys


def _outline_json(outline: Any) -> dict[str, Any]:
    if isinstance(outline, Circle):
        return {"type": "Point", "coordinates": [outline.lon, outline.lat], "radius_m": outline.radius_m}
    ring = [[lon, lat] for lon, lat in outline.ring]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _bbox_json(outlines: Sequence[Any]) -> dict[str, JSONValue]:
    """The lon/lat box around several outlines (circles widened by their radius)."""
    lons: list[float] = []
    lats: list[float] = []
    for o in outlines:
        if isinstance(o, Circle):
            dlat = o.radius_m / _M_PER_DEG_LAT
            dlon = dlat / max(math.cos(math.radians(o.lat)), 1e-6)
            lons += [o.lon - dlon, o.lon + dlon]
            lats += [o.lat - dlat, o.lat + dlat]
        else:
            lons += [p[0] for p in o.ring]
            lats += [p[1] for p in o.ring]
    # widened outwards to whole micro-degrees (at most 0.11 m): a box people read and read back
    w, e = max(math.floor(min(lons) * 1e6) / 1e6, -180.0), min(math.ceil(max(lons) * 1e6) / 1e6, 180.0)
    s, n = max(math.floor(min(lats) * 1e6) / 1e6, -90.0), min(math.ceil(max(lats) * 1e6) / 1e6, 90.0)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
