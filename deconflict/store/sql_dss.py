"""The F3548 DSS interface's half of the store (subscriptions with their cells and
notification indices, DSS references, party availability), mixed into the shared SQL
reader and writer (`deconflict.store.sql`), so every engine runs the same portable
statements."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from deconflict.errors import AlreadyExists, NotFound, StaleVersion
from deconflict.model import State
from deconflict.model.dss import Availability, DssReference, PartyAvailability, Subscription
from deconflict.store.base import SpaceTimeQuery
from deconflict.store.codec import decode_volumes, encode_volumes, from_us, to_us
from deconflict.store.sqlparts import chunks, placeholders

__all__ = ["DssReads", "DssWrites"]


class DssReads:
    """Needs `_one` and `_all` of the reader it is mixed into."""

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    _SUBSCRIPTION_COLUMNS = (
        "id, owner, uss_base_url, notify_intents, notify_constraints, implicit, version,"
        " notification_index, created_at_us, updated_at_us, doc"
    )

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        row = self._one(
            f"SELECT {self._SUBSCRIPTION_COLUMNS} FROM dss_subscriptions WHERE id = ?",  # noqa: S608
            (subscription_id,),
        )
        return None if row is None else _subscription(row)

    def find_subscriptions(self, query: SpaceTimeQuery, *, owner: str | None = None) -> list[Subscription]:
        cells = sorted({int(c) for c in query.cells})
        found: dict[str, Subscription] = {}
        extra = " AND s.owner = ?" if owner is not None else ""
        for chunk in chunks(cells):
            # only '?' placeholders and fixed clauses are interpolated
            sql = (
                "SELECT DISTINCT s.id FROM dss_subscription_cells AS c"  # noqa: S608
                " JOIN dss_subscriptions AS s ON s.id = c.subscription_id"
                f" WHERE c.cell IN ({placeholders(len(chunk))})"
                " AND s.time_start_us <= ? AND s.time_end_us >= ?"
                " AND s.alt_lower_m <= ? AND s.alt_upper_m >= ?" + extra
            )
            params: list[Any] = [
                *chunk,
                to_us(query.time_end),
                to_us(query.time_start),
                query.altitude_upper_m,
                query.altitude_lower_m,
            ]
            if owner is not None:
                params.append(owner)
            for (sid,) in self._all(sql, params):
                if sid not in found:
                    sub = self.get_subscription(sid)
                    if sub is not None:
                        found[sid] = sub
        return [found[k] for k in sorted(found)]

    def subscription_dependents(self, subscription_id: str) -> list[str]:
        rows = self._all(
            "SELECT r.filing_id FROM dss_references AS r JOIN filings AS f ON f.id = r.filing_id"
            " WHERE r.subscription_id = ? AND f.state <> ? ORDER BY r.filing_id",
            (subscription_id, State.ENDED.value),
        )
        return [r[0] for r in rows]

    def dss_references(self, filing_ids: Collection[str]) -> dict[str, DssReference]:
        out: dict[str, DssReference] = {}
        for chunk in chunks(sorted(set(filing_ids))):
            sql = (
                "SELECT filing_id, uss_base_url, subscription_id FROM dss_references"  # noqa: S608
                f" WHERE filing_id IN ({placeholders(len(chunk))})"
            )
            for fid, url, sid in self._all(sql, list(chunk)):
                out[fid] = DssReference(fid, url, sid)
        return out

    def availability(self, party_ids: Collection[str]) -> dict[str, PartyAvailability]:
        out: dict[str, PartyAvailability] = {}
        for chunk in chunks(sorted(set(party_ids))):
            sql = (
                "SELECT party_id, availability, version, updated_at_us FROM party_availability"  # noqa: S608
                f" WHERE party_id IN ({placeholders(len(chunk))})"
            )
            for pid, availability, version, updated in self._all(sql, list(chunk)):
                out[pid] = PartyAvailability(pid, Availability(availability), int(version), from_us(updated))
        return out


class DssWrites(DssReads):
    """Needs `_exec` of the writer it is mixed into."""

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def put_subscription(self, subscription: Subscription, cells: Collection[int]) -> None:
        sub = subscription
        if sub.version < 1:
            raise ValueError(f"subscription {sub.id!r}: versions start at 1, got {sub.version}")
        stored = self._one("SELECT version FROM dss_subscriptions WHERE id = ?", (sub.id,))
        if sub.version == 1 and stored is not None:
            raise AlreadyExists("subscription", sub.id)
        if sub.version > 1:
            if stored is None:
                raise NotFound("subscription", sub.id)
            if sub.version != stored[0] + 1:
                raise StaleVersion(sub.id, str(sub.version - 1), str(stored[0]))
        if self._one("SELECT 1 FROM parties WHERE id = ?", (sub.owner,)) is None:
            raise NotFound("party", sub.owner)
        row = (
            sub.owner,
            sub.uss_base_url,
            int(sub.notify_for_intents),
            int(sub.notify_for_constraints),
            int(sub.implicit),
            sub.version,
            sub.notification_index,
            to_us(sub.time_start),
            to_us(sub.time_end),
            min(v.altitude_lower_m for v in sub.volumes),
            max(v.altitude_upper_m for v in sub.volumes),
            to_us(sub.created_at),
            to_us(sub.updated_at),
            encode_volumes(sub.volumes).decode(),
            sub.id,
        )
        if stored is None:
            self._exec(
                "INSERT INTO dss_subscriptions (owner, uss_base_url, notify_intents, notify_constraints,"
                " implicit, version, notification_index, time_start_us, time_end_us, alt_lower_m,"
                " alt_upper_m, created_at_us, updated_at_us, doc, id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        else:
            self._exec(
                "UPDATE dss_subscriptions SET owner = ?, uss_base_url = ?, notify_intents = ?,"
                " notify_constraints = ?, implicit = ?, version = ?, notification_index = ?,"
                " time_start_us = ?, time_end_us = ?, alt_lower_m = ?, alt_upper_m = ?,"
                " created_at_us = ?, updated_at_us = ?, doc = ? WHERE id = ?",
                row,
            )
            self._exec("DELETE FROM dss_subscription_cells WHERE subscription_id = ?", (sub.id,))
        self._many(
            "INSERT INTO dss_subscription_cells (subscription_id, cell) VALUES (?, ?)",
            [(sub.id, c) for c in sorted({int(c) for c in cells})],
        )

    def delete_subscription(self, subscription_id: str) -> None:
        if self._one("SELECT 1 FROM dss_subscriptions WHERE id = ?", (subscription_id,)) is None:
            raise NotFound("subscription", subscription_id)
        self._exec("DELETE FROM dss_subscription_cells WHERE subscription_id = ?", (subscription_id,))
        self._exec("DELETE FROM dss_subscriptions WHERE id = ?", (subscription_id,))

    def bump_notifications(self, subscription_ids: Collection[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for sid in sorted(set(subscription_ids)):
            self._exec(
                "UPDATE dss_subscriptions SET notification_index = notification_index + 1 WHERE id = ?",
                (sid,),
            )
            row = self._one("SELECT notification_index FROM dss_subscriptions WHERE id = ?", (sid,))
            if row is not None:
                out[sid] = int(row[0])
        return out

    def put_dss_reference(self, reference: DssReference) -> None:
        if self._one("SELECT 1 FROM filings WHERE id = ?", (reference.filing_id,)) is None:
            raise NotFound("filing", reference.filing_id)
        self._exec(
            "INSERT INTO dss_references (filing_id, uss_base_url, subscription_id) VALUES (?, ?, ?)"
            " ON CONFLICT (filing_id) DO UPDATE SET uss_base_url = excluded.uss_base_url,"
            " subscription_id = excluded.subscription_id",
            (reference.filing_id, reference.uss_base_url, reference.subscription_id),
        )

    def set_availability(self, availability: PartyAvailability) -> None:
        a = availability
        if self._one("SELECT 1 FROM parties WHERE id = ?", (a.party_id,)) is None:
            raise NotFound("party", a.party_id)
        row = self._one("SELECT version FROM party_availability WHERE party_id = ?", (a.party_id,))
        stored = 0 if row is None else int(row[0])
        if a.version != stored + 1:
            raise StaleVersion(a.party_id, str(a.version - 1), str(stored))
        if a.updated_at is None:
            raise ValueError("a set availability needs its time")
        self._exec(
            "INSERT INTO party_availability (party_id, availability, version, updated_at_us)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (party_id) DO UPDATE SET"
            " availability = excluded.availability, version = excluded.version,"
            " updated_at_us = excluded.updated_at_us",
            (a.party_id, a.availability.value, a.version, to_us(a.updated_at)),
        )


def _subscription(row: Any) -> Subscription:
    sid, owner, url, intents, constraints, implicit, version, index, created, updated, doc = row
    return Subscription(
        id=sid,
        owner=owner,
        uss_base_url=url,
        volumes=decode_volumes(doc),
        notify_for_intents=bool(intents),
        notify_for_constraints=bool(constraints),
        implicit=bool(implicit),
        version=int(version),
        notification_index=int(index),
        created_at=from_us(created),
        updated_at=from_us(updated),
    )
