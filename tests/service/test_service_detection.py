"""End to end through the service and a real SQLite store: the H3 pre-filter never
hides a conflict. Every conflict recorded on submission equals what a brute-force
comparison of all filings finds; and concurrent conflicting filings are never both
accepted unaware of each other."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta
from pathlib import Path

import h3.api.basic_int as h3
from conftest import T0
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deconflict import agreements
from deconflict.clock import ManualClock
from deconflict.detect.strategic import all_conflicts, detect
from deconflict.errors import ConflictRefused, MissingKey
from deconflict.geometry.cells import INDEX_RESOLUTION, search_cells
from deconflict.geometry.projection import LocalProjection
from deconflict.model import Circle, FilingType, Polygon, Role, State, Volume4D
from deconflict.model.agreement import ConflictAction
from deconflict.service import Draft, Services
from deconflict.service import filings as filings_module
from deconflict.store.base import SpaceTimeQuery
from deconflict.store.sqlite import SqliteStore

CENTRE = LocalProjection.at(35.0, 33.0)
PARTIES = ("north", "south", "drones")


@st.composite
def volumes(draw: st.DrawFn) -> Volume4D:
    # spread over ~60 km so that buffers (up to 18.5 km) and many H3 cells matter
    x = draw(st.floats(-30_000, 30_000))
    y = draw(st.floats(-30_000, 30_000))
    size = draw(st.floats(100, 15_000))
    if draw(st.booleans()):
        lon, lat = CENTRE.inverse(x, y)
        outline: Circle | Polygon = Circle(float(lon), float(lat), size)
    else:
        lon, lat = CENTRE.inverse(
            [x - size, x + size, x + size, x, x - size], [y - size, y - size, y + size, y, y + size]
        )
        outline = Polygon(tuple((float(a), float(b)) for a, b in zip(lon, lat, strict=True)))  # concave
    lower = draw(st.floats(0, 5_000))
    start = T0 + timedelta(hours=1, minutes=draw(st.integers(0, 600)))
    return Volume4D(
        outline,
        lower,
        lower + draw(st.floats(50, 3_000)),
        start,
        start + timedelta(minutes=draw(st.integers(10, 240))),
    )


filings_st = st.lists(
    st.tuples(
        st.sampled_from(PARTIES),
        st.sampled_from(("crewed_flight", "uas_flight", "air_defence_activity", "reservation")),
        st.lists(volumes(), min_size=1, max_size=3),
    ),
    min_size=2,
    max_size=14,
)


def build(path: Path, action: ConflictAction) -> Services:
    agreement = dataclasses.replace(agreements.load(), conflict_action=action)
    services = Services.build(SqliteStore(path), agreement, ManualClock(T0))
    for p in PARTIES:
        services.parties.add(p, role=Role.OPERATOR)
    return services


def file_plan(services: Services, plan: list) -> None:  # type: ignore[type-arg]
    """File each (owner, kind, volumes) of `plan`, with the key a refusal asks for."""
    parties = {p.id: p for p in services.parties.all()}
    for owner, kind, vols in plan:
        draft = Draft(FilingType.INTENT, kind, tuple(vols), State.ACCEPTED)
        try:
            services.filings.submit(parties[owner], draft)
        except MissingKey as exc:
            services.filings.submit(parties[owner], draft, [m["ovn"] for m in exc.missing])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=filings_st)
def test_recorded_conflicts_equal_brute_force(tmp_path_factory: object, plan: list) -> None:  # type: ignore[type-arg]
    path = tmp_path_factory.mktemp("e2e") / "db.sqlite3"  # type: ignore[attr-defined]
    services = build(path, ConflictAction.WARN)
    file_plan(services, plan)
    with services.store.read() as r:
        stored = r.list_filings()
        recorded = {frozenset((c.finding.a.id, c.finding.b.id)) for c in r.list_conflicts()}
    expected = {frozenset((f.a.id, f.b.id)) for f in all_conflicts(stored, services.agreement)}
    assert recorded == expected
    services.store.close()


def test_concurrent_conflicting_filings_are_never_both_accepted_unaware(tmp_path: Path) -> None:
    services = build(tmp_path / "db.sqlite3", ConflictAction.BLOCK)
    parties = {p.id: p for p in services.parties.all()}
    start = T0 + timedelta(hours=2)
    accepted: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(10)

    def worker(i: int) -> None:
        owner = PARTIES[i % 3]
        vol = Volume4D(Circle(35.0 + 0.001 * i, 33.0, 2_000), 0, 1_000, start, start + timedelta(hours=1))
        barrier.wait()
        for _ in range(5):
            try:
                services.filings.submit(parties[owner], Draft(FilingType.INTENT, "uas_flight", (vol,)))
                with lock:
                    accepted.append(owner)
            except (MissingKey, ConflictRefused):
                with lock:
                    refused.append(owner)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join()
    # all 45 filings overlap; with empty keys only the first party to file gets through
    assert len(accepted) + len(refused) == 45
    assert len(set(accepted)) == 1 and len(accepted) == 15
    with services.store.read() as r:
        assert len(r.list_filings()) == 15
        assert r.list_conflicts() == []
    services.store.close()


def test_preview_tells_what_a_filing_would_conflict_with_and_stores_nothing(tmp_path: Path) -> None:
    services = build(tmp_path / "db.sqlite3", ConflictAction.BLOCK)
    parties = {p.id: p for p in services.parties.all()}
    start = T0 + timedelta(hours=2)
    vol = Volume4D(Circle(35.0, 33.0, 2_000), 0, 1_000, start, start + timedelta(hours=1))
    first = services.filings.submit(parties["north"], Draft(FilingType.INTENT, "uas_flight", (vol,))).filing
    probe = dataclasses.replace(first, id="probe", owner="south")
    with services.store.read() as r:
        before = r.list_filings()
    assert [f.b.id for f in services.filings.preview(probe)] == [first.id]
    assert [c.id for c in services.filings.candidates(probe)] == [first.id]
    assert services.filings.preview(dataclasses.replace(probe, owner="north")) == []  # own filings
    with services.store.read() as r:
        assert r.list_filings() == before
    services.store.close()


def test_a_batch_checks_each_filing_against_those_before_it(tmp_path: Path) -> None:
    """Group commit, deterministic: the first filing holds the writer (its `within` hook
    waits) while two conflicting filings queue; they then run as one batch, the second
    sees the first in the same transaction and is refused alone."""
    services = build(tmp_path / "db.sqlite3", ConflictAction.BLOCK)
    parties = {p.id: p for p in services.parties.all()}
    start = T0 + timedelta(hours=2)
    here = Volume4D(Circle(35.0, 33.0, 2_000), 0, 1_000, start, start + timedelta(hours=1))
    far = Volume4D(Circle(36.0, 33.0, 2_000), 0, 1_000, start, start + timedelta(hours=1))
    group = services.filings._writes
    release = threading.Event()
    out: dict[str, object] = {}

    def submit(name: str, owner: str, vol: Volume4D, hold: bool = False) -> None:
        def within(*_: object) -> None:
            release.wait(10)

        try:
            draft = Draft(FilingType.INTENT, "uas_flight", (vol,))
            out[name] = services.filings.submit(
                parties[owner], draft, filing_id=name, within=within if hold else None
            ).filing
        except MissingKey as exc:
            out[name] = exc

    threads = [threading.Thread(target=submit, args=("holder", "drones", far, True))]
    threads[0].start()
    while not group._leading:
        time.sleep(0.001)
    for name, owner in (("first", "north"), ("second", "south")):
        threads.append(threading.Thread(target=submit, args=(name, owner, here)))
        threads[-1].start()
        while len(group._queue) < len(threads) - 1:
            time.sleep(0.001)
    release.set()
    for t in threads:
        t.join(10)
    assert (group.batches, group.bodies) == (2, 3)
    first = out["first"]
    refused = out["second"]
    assert isinstance(refused, MissingKey)
    assert [m["ovn"] for m in refused.missing] == [first.ovn]  # type: ignore[attr-defined]
    with services.store.read() as r:
        assert sorted(f.id for f in r.list_filings()) == ["first", "holder"]
        assert r.list_conflicts() == []
    services.store.close()


meanwhile_st = st.lists(
    st.tuples(
        st.sampled_from(PARTIES),
        st.sampled_from(("crewed_flight", "uas_flight", "air_defence_activity", "reservation")),
        st.lists(volumes(), min_size=1, max_size=2),
        st.booleans(),  # True: the party withdraws one of its live filings instead
    ),
    max_size=12,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=filings_st, meanwhile=meanwhile_st, every=st.integers(1, 3))
def test_a_filing_is_checked_against_what_was_stored_after_its_look(
    tmp_path_factory: object,
    plan: list,  # type: ignore[type-arg]
    meanwhile: list,  # type: ignore[type-arg]
    every: int,
) -> None:
    """A filing is checked against a read snapshot before the write lock, then only
    against what changed since. Here other parties file and withdraw between every
    look and its write: each outcome's conflicts must still equal a check of the
    filing against every live filing as stored when it was written."""
    path = tmp_path_factory.mktemp("look") / "db.sqlite3"  # type: ignore[attr-defined]
    services = build(path, ConflictAction.WARN)
    filings = services.filings
    parties = {p.id: p for p in services.parties.all()}
    pending = list(meanwhile)
    look = filings._look
    busy = False

    def submit(owner: str, draft: Draft) -> object:
        key: list[str] = []
        while True:  # each attempt's look may let new conflicting filings in: add them
            try:
                return filings.submit(parties[owner], draft, key)
            except MissingKey as exc:
                key += [m["ovn"] for m in exc.missing]

    def look_then_others_write(*args: object) -> object:
        nonlocal busy
        seen = look(*args)  # type: ignore[arg-type]
        if busy:
            return seen
        busy = True
        try:
            for _ in range(every):
                if not pending:
                    break
                owner, kind, vols, withdraw = pending.pop()
                mine = filings.current(owner=owner)
                if withdraw and mine:
                    filings.withdraw(parties[owner], mine[0].type, mine[0].id, mine[0].ovn)
                else:
                    submit(owner, Draft(FilingType.INTENT, kind, tuple(vols), State.ACCEPTED))
        finally:
            busy = False
        return seen

    filings._look = look_then_others_write  # type: ignore[method-assign]
    for owner, kind, vols in plan:
        out = submit(owner, Draft(FilingType.INTENT, kind, tuple(vols), State.ACCEPTED))
        filing = out.filing  # type: ignore[attr-defined]
        with services.store.read() as r:
            others = [f for f in r.list_filings() if f.id != filing.id]
        expected = detect(filing, others, services.agreement)
        assert [c.finding for c in out.conflicts] == expected  # type: ignore[attr-defined]
    services.store.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plan=filings_st,
    area=volumes(),
    limit=st.integers(1, 5),
    batch=st.integers(1, 3),
)
def test_an_area_query_in_pages_equals_brute_force(
    tmp_path_factory: object,
    plan: list,  # type: ignore[type-arg]
    area: Volume4D,
    limit: int,
    batch: int,
) -> None:
    """The pages of `Filings.query` (read `batch` candidates at a time, so a page takes
    several reads) add up to every filing that meets the area, measured against every
    stored filing with no index and no buffers."""
    path = tmp_path_factory.mktemp("q") / "db.sqlite3"  # type: ignore[attr-defined]
    services = build(path, ConflictAction.WARN)
    file_plan(services, plan)
    with services.store.read() as r:
        stored = r.list_filings()
    probe = dataclasses.replace(stored[0], id="", owner="", volumes=(area,))
    exact = services.agreement.with_buffers(0.0, 0.0, 0.0)
    expected = sorted(f.b.id for f in detect(probe, stored, exact))
    whole = services.filings.query(area)
    assert [f.id for f in whole] == expected
    saved = filings_module._QUERY_BATCH
    filings_module._QUERY_BATCH = batch
    try:
        pages: list[str] = []
        after = None
        while True:
            page = services.filings.query(area, after=after, limit=limit)
            assert len(page) <= limit
            pages += [f.id for f in page]
            if len(page) < limit:
                break
            after = page[-1].id
    finally:
        filings_module._QUERY_BATCH = saved
    assert pages == expected
    services.store.close()


def test_an_area_query_reads_past_candidates_that_miss(tmp_path: Path) -> None:
    """Candidates of the index that the exact check drops do not end a page early: six
    filings share the area's cell but lie 2 to 3 km from it, and sort before the three
    that meet it."""
    services = build(tmp_path / "db.sqlite3", ConflictAction.WARN)
    north = next(p for p in services.parties.all() if p.id == "north")
    lat, lon = h3.cell_to_latlng(h3.latlng_to_cell(33.0, 35.0, INDEX_RESOLUTION))
    here = LocalProjection.at(lon, lat)
    start = T0 + timedelta(hours=2)

    def at(x: float, y: float, radius_m: float) -> Volume4D:
        a, b = here.inverse(x, y)
        return Volume4D(Circle(float(a), float(b), radius_m), 0, 1_000, start, start + timedelta(hours=1))

    for i in range(6):
        away = at(2_000 + 200 * i, 1_000, 100)
        services.filings.submit(north, Draft(FilingType.INTENT, "uas_flight", (away,)), filing_id=f"a{i}")
    for i in range(3):
        near = at(0, 0, 100 + i)
        services.filings.submit(north, Draft(FilingType.INTENT, "uas_flight", (near,)), filing_id=f"b{i}")
    area = at(0, 0, 500)
    with services.store.read() as r:  # the index does give the six as candidates
        cells = search_cells(area.outline, 0.0)
        q = SpaceTimeQuery(cells, area.time_start, area.time_end, 0.0, 1_000.0)
        assert sorted(f.id for f in r.find_filings(q)) == [*(f"a{i}" for i in range(6)), "b0", "b1", "b2"]
    saved = filings_module._QUERY_BATCH
    filings_module._QUERY_BATCH = 1
    try:
        assert [f.id for f in services.filings.query(area)] == ["b0", "b1", "b2"]
        assert [f.id for f in services.filings.query(area, limit=1)] == ["b0"]
        assert [f.id for f in services.filings.query(area, limit=2, after="a3")] == ["b0", "b1"]
        assert [f.id for f in services.filings.query(area, limit=5, after="b0")] == ["b1", "b2"]
    finally:
        filings_module._QUERY_BATCH = saved
    services.store.close()
