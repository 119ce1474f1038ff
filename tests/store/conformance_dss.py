"""Conformance suite, part two: what the F3548 DSS interface keeps (subscriptions,
DSS references, party availability). Every backend runs it unchanged."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from conformance import HERE, T0, THERE, Boom, H, filing, put, query, vol, with_parties

from deconflict.errors import AlreadyExists, NotFound, StaleVersion
from deconflict.geometry.cells import volume_cells
from deconflict.model import State, Volume4D
from deconflict.model.dss import Availability, DssReference, PartyAvailability, Subscription
from deconflict.store.base import Store


def subscription(
    sid: str = "s1",
    owner: str = "alpha",
    volumes: tuple[Volume4D, ...] | None = None,
    *,
    version: int = 1,
    intents: bool = True,
    constraints: bool = False,
    implicit: bool = False,
) -> Subscription:
    return Subscription(
        id=sid,
        owner=owner,
        uss_base_url="https://uss.example/utm",
        volumes=volumes if volumes is not None else (vol(),),
        notify_for_intents=intents,
        notify_for_constraints=constraints,
        implicit=implicit,
        version=version,
        notification_index=0,
        created_at=T0 - H,
        updated_at=T0 - H + timedelta(minutes=version),
    )


def cells(s: Subscription) -> frozenset[int]:
    out: set[int] = set()
    for v in s.volumes:
        out |= volume_cells(v.outline)
    return frozenset(out)


def put_sub(store: Store, *subs: Subscription) -> None:
    with store.write() as w:
        for s in subs:
            w.put_subscription(s, cells(s))


class TestSubscriptions:
    def test_round_trip_is_exact(self, store: Store) -> None:
        with_parties(store, "alpha")
        s = subscription(volumes=(vol(), vol(THERE, lo=100, hi=200)), constraints=True, implicit=True)
        put_sub(store, s)
        with store.read() as r:
            assert r.get_subscription("s1") == s
            assert r.get_subscription("nope") is None

    def test_versions_must_follow_on(self, store: Store) -> None:
        with_parties(store, "alpha")
        s = subscription()
        put_sub(store, s)
        with pytest.raises(AlreadyExists):
            put_sub(store, s)
        with pytest.raises(StaleVersion):
            put_sub(store, replace(s, version=3))
        with pytest.raises(NotFound):
            put_sub(store, replace(s, id="other", version=2))
        moved = replace(s, version=2, volumes=(vol(THERE),))
        put_sub(store, moved)
        with store.read() as r:
            assert r.get_subscription("s1") == moved
            # the index moved with it
            assert [x.id for x in r.find_subscriptions(query(THERE))] == ["s1"]
            assert r.find_subscriptions(query(HERE)) == []

    def test_owner_must_be_a_party(self, store: Store) -> None:
        with pytest.raises(NotFound):
            put_sub(store, subscription(owner="ghost"))

    def test_find_by_cell_time_altitude_and_owner(self, store: Store) -> None:
        with_parties(store, "alpha", "beta")
        put_sub(
            store,
            subscription("a"),
            subscription("b", owner="beta"),
            subscription("later", volumes=(vol(start=T0 + 2 * H, end=T0 + 3 * H),)),
            subscription("high", volumes=(vol(lo=1000, hi=2000),)),
            subscription("there", volumes=(vol(THERE),)),
        )
        with store.read() as r:
            assert [s.id for s in r.find_subscriptions(query())] == ["a", "b"]
            assert [s.id for s in r.find_subscriptions(query(), owner="beta")] == ["b"]
            # bounds are inclusive: a window that ends when "later" starts meets it
            assert [s.id for s in r.find_subscriptions(query(end=T0 + 2 * H))] == ["a", "b", "later"]
            assert [s.id for s in r.find_subscriptions(query(hi=1000))] == ["a", "b", "high"]

    def test_bump_and_delete(self, store: Store) -> None:
        with_parties(store, "alpha")
        put_sub(store, subscription("a"), subscription("b"))
        with store.write() as w:
            assert w.bump_notifications(["a", "b", "ghost"]) == {"a": 1, "b": 1}
            assert w.bump_notifications(["a"]) == {"a": 2}
        with store.read() as r:
            got = r.get_subscription("a")
            assert got is not None and got.notification_index == 2 and got.version == 1
        with store.write() as w:
            w.delete_subscription("a")
            with pytest.raises(NotFound):
                w.delete_subscription("a")
        with store.read() as r:
            assert r.get_subscription("a") is None
            assert [s.id for s in r.find_subscriptions(query())] == ["b"]

    def test_bump_rolls_back_with_its_transaction(self, store: Store) -> None:
        with_parties(store, "alpha")
        put_sub(store, subscription("a"))
        with pytest.raises(Boom), store.write() as w:
            w.bump_notifications(["a"])
            raise Boom
        with store.read() as r:
            got = r.get_subscription("a")
            assert got is not None and got.notification_index == 0


class TestReferences:
    def test_put_replace_and_dependents(self, store: Store) -> None:
        with_parties(store, "alpha")
        put(store, filing("f1"), filing("f2"), filing("gone", state=State.ENDED))
        with store.write() as w:
            w.put_dss_reference(DssReference("f1", "https://a.example", "s1"))
            w.put_dss_reference(DssReference("f2", "https://a.example", "s1"))
            w.put_dss_reference(DssReference("gone", "https://a.example", "s1"))
            w.put_dss_reference(DssReference("f2", "https://b.example", "s2"))
            with pytest.raises(NotFound):
                w.put_dss_reference(DssReference("nope", "https://a.example", "s1"))
        with store.read() as r:
            assert r.dss_references(["f1", "f2", "nope"]) == {
                "f1": DssReference("f1", "https://a.example", "s1"),
                "f2": DssReference("f2", "https://b.example", "s2"),
            }
            # ended filings depend on nothing
            assert r.subscription_dependents("s1") == ["f1"]
            assert r.subscription_dependents("s2") == ["f2"]


class TestAvailability:
    def test_versions_and_reads(self, store: Store) -> None:
        with_parties(store, "alpha", "beta")
        with store.read() as r:
            assert r.availability(["alpha"]) == {}
        down = PartyAvailability("alpha", Availability.DOWN, 1, T0)
        with store.write() as w:
            w.set_availability(down)
            with pytest.raises(StaleVersion):
                w.set_availability(PartyAvailability("alpha", Availability.NORMAL, 1, T0))
            with pytest.raises(NotFound):
                w.set_availability(PartyAvailability("ghost", Availability.DOWN, 1, T0))
        up = PartyAvailability("alpha", Availability.NORMAL, 2, T0 + H)
        with store.write() as w:
            w.set_availability(up)
        with store.read() as r:
            assert r.availability(["alpha", "beta", "ghost"]) == {"alpha": up}


class TestTacticalAlerts:
    """Issue 4: alerts of the live picture, created, updated, closed, listed."""

    def test_round_trip_update_and_close(self, store: Store) -> None:
        from deconflict.model.alert import AlertKind, TacticalAlert

        a = TacticalAlert(
            "al1", AlertKind.CONFLICT, "north/N1", "north", "south/S1", "south", None, T0, T0,
            None, {"t_cpa_s": 12.5, "d_cpa_m": 100.0, "t_in_s": None, "los": False},
        )  # fmt: skip
        b = TacticalAlert("al2", AlertKind.UNANNOUNCED, "north/N2", "north", None, None, "c1", T0 + H, T0 + H)
        with store.write() as w:
            w.put_tactical_alert(a)
            w.put_tactical_alert(b)
        with store.read() as r:
            assert r.tactical_alerts() == [b, a]
            assert r.tactical_alerts(open_only=True, limit=1) == [b]
        a2 = replace(a, updated_at=T0 + H, figures={"d_cpa_m": 50.0}, track_a="ignored/on-update")
        with store.write() as w:
            w.put_tactical_alert(a2)
            w.put_tactical_alert(replace(b, closed_at=T0 + 2 * H, updated_at=T0 + 2 * H))
        with store.read() as r:
            got = {x.id: x for x in r.tactical_alerts()}
            assert got["al1"] == replace(a2, track_a="north/N1")
            assert got["al2"].closed_at == T0 + 2 * H
            assert [x.id for x in r.tactical_alerts(open_only=True)] == ["al1"]

    def test_many_alerts_in_one_call_as_one_by_one(self, store: Store) -> None:
        from deconflict.model.alert import AlertKind, TacticalAlert

        alerts = [
            TacticalAlert(f"al{i:04d}", AlertKind.CONFLICT, f"north/N{i}", "north", f"south/S{i}", "south",
                          None, T0 + i * timedelta(seconds=1), T0 + i * timedelta(seconds=1), None,
                          {"t_cpa_s": float(i), "d_cpa_m": 10.0, "t_in_s": None, "los": i % 2 == 0})
            for i in range(1200)
        ]  # fmt: skip
        with store.write() as w:
            w.put_tactical_alerts(alerts)
            w.put_tactical_alerts([])
        with store.read() as r:
            assert r.tactical_alerts(limit=2000) == alerts[::-1]
        # one call: some updated, some closed, one new; ids given once only
        changed = [replace(a, updated_at=T0 + H, figures={"d_cpa_m": 1.0}) for a in alerts[:10]]
        closed = [replace(a, updated_at=T0 + H, closed_at=T0 + H) for a in alerts[10:20]]
        new = TacticalAlert(
            "zz", AlertKind.UNANNOUNCED, "north/N9", "north", None, None, "c1", T0 + H, T0 + H
        )
        with store.write() as w:
            w.put_tactical_alerts([*changed, *closed, new])
            with pytest.raises(ValueError, match="twice"):
                w.put_tactical_alerts([new, new])
        with store.read() as r:
            got = {a.id: a for a in r.tactical_alerts(limit=2000)}
            assert [got[a.id] for a in changed] == changed and [got[a.id] for a in closed] == closed
            assert got["zz"] == new and got["al0500"] == alerts[500]
            assert len(r.tactical_alerts(open_only=True, limit=2000)) == 1200 + 1 - 10
