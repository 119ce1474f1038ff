"""The operations console in a real browser (Debian's headless Chromium, driven by
Playwright) against the real server: the issue's end-to-end checks (the map against the
API, a conflict caused through the API, WILCO on a message) against `deconflict demo`
itself, started as a process with the scenario moving (`demo`); the others against the
seeded example in-process (`seeded`: a known, still picture).

Every step leaves a screenshot in test-artifacts/console/ (git-ignored)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from chromium import ARTIFACTS, EXECUTABLE, launch, root_conftest

from deconflict.api.app import create_app
from deconflict.model import Agreement
from deconflict.service import Services
from deconflict.sim.demo import DURATION_S
from deconflict.sim.seed import seed_example
from deconflict.store.sqlite import SqliteStore

sync_api = pytest.importorskip("playwright.sync_api")

if not EXECUTABLE.exists():  # pragma: no cover - depends on the machine
    message = f"{EXECUTABLE} is missing: apt-get install -y chromium (.ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


#: the demo's time compression in these tests: the aircraft take off 6-14 s after the start
DEMO_SPEED = 50.0


@dataclass
class Server:
    """A running service, its parties' tokens, and a client per party."""

    url: str
    tokens: dict[str, str]
    reservation: dict[str, Any] = field(default_factory=dict)
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, party: str) -> httpx.Client:
        if party not in self.clients:
            headers = {"Authorization": f"Bearer {self.tokens[party]}"}
            self.clients[party] = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        return self.clients[party]

    def ids(self, path: str) -> set[str]:
        r = self.client("shield").get(path)
        r.raise_for_status()
        return {item["id"] for item in r.json()}


def _box(lon: float, lat: float, half: float, start: datetime, end: datetime) -> dict[str, Any]:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half]]
    ring.append([lon - half, lat + half])
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring + [ring[0]]]},
        "properties": {
            "altitude_lower_m": 0,
            "altitude_upper_m": 6000,
            "time_start": start.isoformat().replace("+00:00", "Z"),
            "time_end": end.isoformat().replace("+00:00", "Z"),
        },
    }


def _centre(geometry: dict[str, Any]) -> tuple[float, float]:
    """A volume's centre: a circle's, or the mean of a polygon's vertices."""
    if geometry["type"] == "Point":
        lon, lat = geometry["coordinates"]
        return float(lon), float(lat)
    ring = geometry["coordinates"][0][:-1]
    return sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)


def _survey(server: Server, *, settled: bool = False) -> dict[str, Any]:
    """The drone survey; `settled`: the demo's, once moved (version 2: it stays there to
    the end of the round, when its window ends) with at least 5 minutes of service time left."""

    def found() -> dict[str, Any] | None:
        mine = [f for f in server.client("north").get("/v1/intents").json() if f["owner"] == "drones"]
        if not settled:
            return mine[0] if mine else None
        now = datetime.fromisoformat(server.client("north").get("/v1/clock").json()["now"])
        return next((f for f in mine if f["version"] >= 2
                     and datetime.fromisoformat(f["volumes"][0]["properties"]["time_end"]) - now
                     > timedelta(minutes=5)), None)  # fmt: skip

    survey = _until(found, timeout_s=30)
    assert survey, "no drone survey"
    return survey


def _cause_conflict(server: Server, survey: dict[str, Any]) -> tuple[set[str], float]:
    """north files a crewed flight over the drone `survey` (in its window), having seen it
    (accepted, its conflict recorded): the new conflicts' ids, and when the answer came
    (monotonic)."""
    volume = survey["volumes"][0]
    window = [datetime.fromisoformat(volume["properties"][k]) for k in ("time_start", "time_end")]
    body = {
        "kind": "crewed_flight",
        "volumes": [_box(*_centre(volume["geometry"]), 0.05, *window)],
        "key": [survey["ovn"]],
    }
    r = server.client("north").post("/v1/intents", json=body)
    assert r.status_code == 201, r.text
    return {c["id"] for c in r.json()["conflicts"]}, time.monotonic()


@pytest.fixture
def seeded(tmp_path: Path, agreement: Agreement) -> Iterator[Server]:
    """`deconflict serve --seed-example` in-process (the system clock, as scripts/serve),
    plus one reservation filed through the API (the example has none)."""
    store = SqliteStore(tmp_path / "deconflict.sqlite3")
    services = Services.build(store, agreement)
    tokens = seed_example(services, tmp_path)
    assert tokens is not None
    with root_conftest().ThreadServer(create_app(services, sth_interval_s=None)) as url:
        s = Server(url, tokens)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
        volume = _box(34.9, 34.3, 0.1, start, start + timedelta(hours=2))
        r = s.client("south").post("/v1/constraints", json={"kind": "reservation", "volumes": [volume]})
        assert r.status_code == 201, r.text
        s.reservation = r.json()
        yield s
        for c in s.clients.values():
            c.close()
    store.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`deconflict demo` as a user starts it (a process: SQLite in a fresh data directory,
    a free port), at DEMO_SPEED so that the scenario moves while the tests run; the
    parties' tokens from the file it writes."""
    root = root_conftest()
    data = tmp_path_factory.mktemp("demo")
    port = root.free_port()
    args = ["demo", "--data-dir", str(data), "--port", str(port), "--speed", f"{DEMO_SPEED:g}"]
    with (data / "demo.log").open("wb") as log:  # its progress bars, and what went wrong if anything
        proc = root.start_deconflict(args, port, stderr=log)
        try:
            server = Server(f"http://127.0.0.1:{port}", json.loads((data / "demo-tokens.json").read_text()))
            yield server
            for c in server.clients.values():
                c.close()
        finally:
            returncode = root.stop_deconflict(proc)
    assert returncode == 0, (data / "demo.log").read_text()
    assert "scenario stopped" not in (data / "demo.log").read_text()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        context = launch(p, tmp_path_factory.mktemp("chromium-profile"))
        yield context
        context.close()


class Console:
    """One tab on the console, with every request it made and a screenshot per step."""

    def __init__(self, page: Any, server: Server, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.step = 0

    def shot(self, label: str) -> Path:
        self.step += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{self.step:02d}-{label}.png"
        self.page.screenshot(path=str(path))
        return path

    def sign_in(self, party: str) -> None:
        self.page.goto(self.server.url + "/")
        self.page.fill("#token", self.server.tokens[party])
        self.page.click("#signin button[type=submit]")
        self.wait("() => window.deconflict.counts().refreshes > 0")
        self.idle()

    def wait(self, predicate: str, timeout_ms: float = 15_000) -> None:
        # a function expression: the console's CSP forbids eval, which a bare expression needs
        self.page.wait_for_function(predicate, timeout=timeout_ms)

    def idle(self) -> None:
        self.page.evaluate("() => window.deconflict.idle()")

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def offsite(self) -> list[str]:
        """Requests to anything but this service (data: and blob: URLs are local)."""
        return [u for u in self.requests if not u.startswith((self.server.url + "/", "data:", "blob:"))]


def _tab(browser_context: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[Console]:
    page = browser_context.new_page()
    c = Console(page, server, request.node.name)
    yield c
    page.close()
    assert c.errors == [], f"errors on the page: {c.errors}"


@pytest.fixture
def console(browser_context: Any, seeded: Server, request: pytest.FixtureRequest) -> Iterator[Console]:
    """A tab on the seeded example's console."""
    yield from _tab(browser_context, seeded, request)


@pytest.fixture
def demo_console(browser_context: Any, demo: Server, request: pytest.FixtureRequest) -> Iterator[Console]:
    """A tab on the running demo's console."""
    yield from _tab(browser_context, demo, request)


def test_hover_and_click_a_filing(console: Console, seeded: Server) -> None:
    console.sign_in("shield")
    assert console.page.text_content("#count-filings") == "3"  # the example's three
    console.shot("signed-in")

    # hover south's transit (a box 4000-10000 m around 35.4E 33.6N): its band and window
    south = next(f for f in seeded.client("shield").get("/v1/intents").json() if f["owner"] == "south")
    props = south["volumes"][0]["properties"]
    point = console.js("([x, y]) => window.deconflict.screenPoint(x, y)", [35.4, 33.6])
    console.page.mouse.move(point["x"], point["y"])
    console.page.wait_for_selector("[data-testid=hover]")
    assert console.page.text_content("[data-testid=hover-altitude]") == "altitude 4000–10000 m"
    time_text = console.page.text_content("[data-testid=hover-time]") or ""
    assert props["time_start"].replace("T", " ")[:16] in time_text
    assert props["time_end"][11:16] in time_text
    console.shot("hover-filing")

    # click the reservation: its versions and the receipt the API gave when it was filed
    point = console.js("([x, y]) => window.deconflict.screenPoint(x, y)", [34.9, 34.3])
    console.page.mouse.click(point["x"], point["y"])
    console.page.wait_for_selector("[data-testid=receipt-verified]")
    rows = console.page.query_selector_all("[data-testid=versions] tr[data-version]")
    assert [r.get_attribute("data-version") for r in rows] == ["1"]
    leaf = seeded.reservation["receipt"]["leaf_index"]
    receipt = console.page.query_selector("[data-testid=receipt]")
    assert receipt is not None
    assert receipt.get_attribute("data-leaf-index") == str(leaf)
    assert console.page.text_content("[data-testid=receipt-leaf]").startswith(f"leaf #{leaf} (filing_created")  # type: ignore[union-attr]
    sth = seeded.client("shield").get("/v1/log/sth").json()
    assert receipt.get_attribute("data-tree-size") == str(sth["size"])
    assert console.page.get_attribute("[data-testid=receipt-verified]", "data-verified") == "true"
    assert seeded.reservation["receipt"]["entry_hash"] in (receipt.text_content() or "")
    console.shot("filing-receipt")
    # straight to the version's entry (the service's leaf_index, checked), not the whole log
    reads = [u for u in console.requests if "/v1/log/entries" in u]
    assert f"{seeded.url}/v1/log/entries?start={leaf}&end={leaf + 1}" in reads, reads
    assert all("&end=" in u for u in reads), reads  # the timeline reads the first entry only

    # offline: nothing was asked of any other host (no CDN, tiles, fonts or glyphs)
    assert console.offsite() == []
    assert any(u.endswith("/console/basemap/land.geojson") for u in console.requests)


def test_a_bad_token_is_refused(console: Console, seeded: Server) -> None:
    page = console.page
    page.goto(seeded.url + "/")
    page.fill("#token", "dcf_not-a-token")
    page.click("#signin button[type=submit]")
    page.wait_for_function("() => document.querySelector('#signin-error').textContent !== ''")
    error = page.text_content("#signin-error") or ""
    assert "refused" in error and "401" in error
    assert page.is_hidden("#app")
    assert console.js("() => sessionStorage.getItem('deconflict.token')") is None
    assert not [u for u in console.requests if "/v1/" in u and not u.endswith("/v1/me")]
    console.shot("refused")

    # the right token gets in, stays in this tab's sessionStorage across a reload, and signs out
    console.sign_in("drones")
    assert console.js("() => sessionStorage.getItem('deconflict.token')") == seeded.tokens["drones"]
    page.reload()
    console.wait("() => window.deconflict.counts().refreshes > 0")
    assert "(drones, operator)" in (page.text_content("[data-testid=who]") or "")
    console.shot("signed-in-after-reload")
    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    assert console.js("() => sessionStorage.getItem('deconflict.token')") is None


def test_lists_are_read_by_pages_and_asked_again_with_their_tags(console: Console, seeded: Server) -> None:
    """The console reads each list page by page (Link rel="next") and asks for it again with
    its ETag: while nothing changes, the service answers 304 and the map keeps what it drew."""
    seen: list[tuple[str, int]] = []
    console.page.on("response", lambda r: seen.append((r.url, r.status)))

    def polls(more: int) -> None:
        done = console.js("() => window.deconflict.counts().refreshes")
        console.wait(f"() => window.deconflict.counts().refreshes > {done + more}")

    console.sign_in("shield")
    console.js("() => window.deconflict.setPollInterval(200)")
    polls(3)  # signing in wrote (the party came UP, its messages were delivered): lists changed
    seen.clear()
    polls(3)
    lists = [(u, s) for u, s in seen if "/v1/intents?" in u or "/v1/conflicts?" in u]
    assert lists and {s for _, s in lists} == {304}, lists  # nothing changed: no list sent again
    assert console.page.text_content("#count-filings") == "3"

    console.js("() => window.deconflict.setListPages(1, 20000)")
    seen.clear()
    polls(2)
    assert console.page.text_content("#count-filings") == "3"
    pages = [u for u, s in seen if "/v1/intents?" in u and s == 200]
    assert any("after=" in u for u in pages), pages  # the second and third pages, by their links
    assert "only the first" not in (console.page.text_content("#updated") or "")


IN_VIEW = "() => document.querySelector('#updated').textContent.includes('showing the filings in view')"


def test_past_the_lists_cut_the_map_reads_the_filings_in_view(console: Console, seeded: Server) -> None:
    """More filings than the console reads from the lists: the live map shows the filings in
    the map's view instead (POST /v1/query, page by page), and reads them again as the view
    moves, with their open conflicts; back under the cut, the lists again."""
    seen: list[tuple[str, str]] = []
    console.page.on("request", lambda r: seen.append((r.method, r.url)))
    intents = {f["owner"]: f for f in seeded.client("shield").get("/v1/intents").json()}
    fed = "() => [...new Set(window.deconflict.fed().filings.map((v) => v.split('#')[0]))].sort()"
    console.sign_in("shield")
    console.js("() => window.deconflict.setPollInterval(200)")
    console.js("() => window.deconflict.setListPages(1, 2)")  # 3 intents and 1 reservation: past it
    console.wait(IN_VIEW)
    # the view the map was fitted to holds all four: it too is cut, and the status line says so
    console.wait("() => document.querySelector('#updated').textContent.includes('the first 2 filings by id')")
    shown = [int(console.page.text_content(f"#count-{x}") or "0") for x in ("filings", "reservations")]
    assert sum(shown) == 2, shown
    # the south's transit alone in view (the others are over 100 km away)
    console.js("() => window.deconflict.map.jumpTo({center: [35.4, 33.6], zoom: 11})")
    console.wait(f"() => JSON.stringify(({fed})()) === JSON.stringify([{intents['south']['id']!r}])")
    assert console.page.text_content("#count-filings") == "1"
    assert console.page.text_content("#count-reservations") == "0"
    # the survey and the patrol over it, and their conflict between them
    console.js("() => window.deconflict.map.jumpTo({center: [36.1, 35.15], zoom: 10})")
    both = sorted([intents["drones"]["id"], intents["north"]["id"]])
    console.wait(f"() => JSON.stringify(({fed})()) === JSON.stringify({both!r})")
    console.wait("() => window.deconflict.fed().conflicts.length === 1")
    queries = [u for m, u in seen if m == "POST" and "/v1/query?" in u]
    assert any("after=" in u for u in queries), queries  # a page of 1 filing, then the next by its link
    assert all("conflicts=open" in u for u in queries), queries  # the conflicts of the filings in view
    console.shot("in-view")
    console.js("() => window.deconflict.setListPages(1000, 20000)")  # under the cut: the lists again
    console.wait("() => document.querySelector('#count-filings').textContent === '3'")
    assert "in view" not in (console.page.text_content("#updated") or "")


def test_a_conflicts_list_past_the_cut_turns_the_map_to_the_view(console: Console, seeded: Server) -> None:
    """Fewer filings than the cut but more conflicts (three drone surveys, three flights over
    them: nine conflicts): the map shows the filings in view and all their conflicts, not the
    first conflicts of the list."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    spot = _box(34.5, 33.0, 0.02, start, start + timedelta(hours=1))
    surveys = [
        seeded.client("drones").post("/v1/intents", json={"kind": "uas_flight", "volumes": [spot]}).json()
        for _ in range(3)
    ]
    key = [s["filing"]["ovn"] for s in surveys]
    over = {"kind": "crewed_flight", "volumes": [spot], "key": key}
    flights = [seeded.client("north").post("/v1/intents", json=over) for _ in range(3)]
    assert all(len(f.json()["conflicts"]) == 3 for f in flights), [f.text for f in flights]
    c = seeded.client("shield")
    assert len(c.get("/v1/intents").json()) == 9 and len(c.get("/v1/conflicts").json()) == 10
    ids = sorted([s["filing"]["id"] for s in surveys] + [f.json()["filing"]["id"] for f in flights])
    fed = "() => [...new Set(window.deconflict.fed().filings.map((v) => v.split('#')[0]))].sort()"
    console.sign_in("shield")
    console.js("() => window.deconflict.setPollInterval(200)")
    console.js("() => window.deconflict.map.jumpTo({center: [34.5, 33.0], zoom: 11})")
    console.js("() => window.deconflict.setListPages(1000, 9)")  # 9 intents, 1 reservation; 10 conflicts
    console.wait(IN_VIEW)
    console.wait(f"() => JSON.stringify(({fed})()) === JSON.stringify({ids!r})")
    console.wait("() => window.deconflict.fed().conflicts.length === 9")
    assert console.page.text_content("#count-conflicts") == "9"


def test_tracks_take_data_through_the_entry_point(console: Console, seeded: Server) -> None:
    console.sign_in("south")
    tracks = [
        {"id": "t1", "callsign": "NRT21", "party": "north", "lon": 35.9, "lat": 35.0, "heading_deg": 90},
        {"id": "t2", "callsign": "STH07", "party": "south", "lon": 35.6, "lat": 34.6, "heading_deg": 10},
        {"id": "t3", "callsign": "UAV3", "party": "drones", "lon": 36.0, "lat": 35.15, "heading_deg": 200},
        {"id": "bad", "lon": "35", "lat": 35.0},  # no finite position: skipped
    ]
    assert console.js("(t) => window.deconflict.setTracks(t)", tracks) == 3
    for step in range(1, 4):  # three seconds of movement: a trail behind each
        moved = [dict(t, lon=t["lon"] + 0.02 * step) for t in tracks[:3]]
        console.js("(t) => window.deconflict.setTracks(t)", moved)
    tactical = [{"a": "t1", "b": "t3", "time_to_cpa_s": 42}]
    assert console.js("(c) => window.deconflict.setTacticalConflicts(c)", tactical) == 1
    console.idle()
    assert sorted(console.js("() => window.deconflict.rendered()")["tracks"]) == ["t1", "t2", "t3"]
    assert console.page.text_content("#count-tracks") == "3"
    # drawn over the map where MapLibre itself projects them (unrotated, then rotated), each
    # with its trail of 4 points (first position and three moves) and its callsign
    for bearing in (0, 30):
        console.js("(b) => window.deconflict.map.setBearing(b)", bearing)
        console.idle()
        drawn = {d["id"]: d for d in console.js("() => window.deconflict.drawnTracks()")}
        assert sorted(drawn) == ["t1", "t2", "t3"]
        for t in tracks[:3]:
            d = drawn[t["id"]]
            lon = t["lon"] + 0.06
            ref = console.js("([x, y]) => window.deconflict.map.project([x, y])", [lon, t["lat"]])
            assert abs(d["x"] - ref["x"]) < 0.5 and abs(d["y"] - ref["y"]) < 0.5, (bearing, d, ref)
            first = console.js("([x, y]) => window.deconflict.map.project([x, y])", [t["lon"], t["lat"]])
            assert len(d["trail"]) == 4 and abs(d["trail"][0][0] - first["x"]) < 0.5
            assert d["label"] is True
            # the arrow is on the overlay's pixels there; nothing just above it
            assert console.js("([x, y]) => window.deconflict.overlayPixel(x, y)", [d["x"], d["y"]])[3] == 255
            assert (
                console.js("([x, y]) => window.deconflict.overlayPixel(x, y)", [d["x"], d["y"] - 15])[3] == 0
            )
        console.shot(f"tracks-bearing-{bearing}")
    console.js("() => window.deconflict.map.setBearing(0)")
    console.idle()

    # hover a track: its callsign, party and heading
    point = console.js("([x, y]) => window.deconflict.screenPoint(x, y)", [35.96, 35.0])
    console.page.mouse.move(point["x"], point["y"])
    console.page.wait_for_selector("[data-testid=hover]")
    hover = console.page.text_content("[data-testid=hover]") or ""
    assert hover.startswith("NRT21") and "north" in hover and "heading 90°" in hover

    console.js("(t) => window.deconflict.setTracks(t)", tracks[:2])  # t3 gone
    console.idle()
    assert sorted(console.js("() => window.deconflict.rendered()")["tracks"]) == ["t1", "t2"]


def test_tracks_from_the_live_picture_match_the_api(console: Console, seeded: Server) -> None:
    """Tracks reported through the ingestion API are drawn, as many as GET /v1/tracks holds,
    with the tactical conflict the service alerts on between them."""
    console.sign_in("shield")
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def report(party: str, track: str, lon: float, heading: float) -> None:
        row = {"track": track, "callsign": track, "time": now, "lat": 34.9, "lon": lon, "alt_m": 3000,
               "gs_mps": 200, "trk_deg": heading, "vs_mps": 0, "kind": "crewed_flight"}  # fmt: skip
        r = seeded.client(party).post("/v1/tracks", json={"reports": [row]})
        assert r.status_code == 200, r.text

    report("north", "NAF101", 35.5, 90)
    report("south", "SAF7", 35.7, 270)  # head-on, 18 km apart: a tactical conflict
    picture = seeded.client("shield").get("/v1/tracks").json()
    alerts = seeded.client("shield").get("/v1/tactical/alerts").json()
    assert picture["count"] == 2 and len(alerts) == 1
    ids = sorted(t["id"] for t in picture["tracks"])
    console.wait(f"() => window.deconflict.counts().tracks === {len(ids)}", timeout_ms=5_000)
    console.idle()
    assert sorted(console.js("() => window.deconflict.rendered()")["tracks"]) == ids
    assert console.page.text_content("#count-tracks") == "2"
    links = console.js("() => window.deconflict.sources()")
    assert len(links.get("tactical", [])) == 1, links
    console.shot("tracks-from-the-api")
    assert console.offsite() == []


def test_console_files_are_served_with_a_same_origin_policy(seeded: Server) -> None:
    with httpx.Client(base_url=seeded.url) as c:
        r = c.get("/")
        assert r.status_code == 307 and r.headers["location"] == "/console/"
        page = c.get("/console/")
        assert page.status_code == 200 and "console.js" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self';")
        for path in ("console.js", "console.css", "maplibre-gl-worker.js", "basemap/land.geojson"):
            got = c.get(f"/console/{path}")
            assert got.status_code == 200 and len(got.content) > 10_000, path
        assert c.get("/console/maplibre-gl-worker.js").headers["content-type"].startswith("text/javascript")
        missing = c.get("/console/nothing-here.js")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert c.get("/v1/intents").status_code == 401  # the API is untouched: still needs a token
    land_file = Path(__file__).resolve().parents[2] / "deconflict/web/basemap/land.geojson"
    land = json.loads(land_file.read_text())
    assert land["type"] == "FeatureCollection" and land["features"][0]["geometry"]["type"] == "MultiPolygon"


def test_browser_inclusion_check_agrees_with_the_python_reference(console: Console, seeded: Server) -> None:
    """The receipt's in-browser RFC 9162 check against deconflict.ledger.rfc9162's verifier,
    on every leaf of trees of 1 to 13 leaves, with the right proof and with a changed hash,
    a wrong index and a wrong size."""
    from deconflict.ledger import rfc9162

    def reference(index: int, size: int, entry: bytes, path: list[str], root: str) -> bool:
        try:
            rfc9162.verify_inclusion(
                rfc9162.leaf_hash(entry), index, size, [bytes.fromhex(h) for h in path], bytes.fromhex(root)
            )
        except Exception:
            return False
        return True

    console.sign_in("shield")
    entries = [f"entry {i}".encode() for i in range(13)]
    hashes = [rfc9162.leaf_hash(e) for e in entries]
    cases: list[tuple[int, int, str, list[str], str]] = []
    expected: list[bool] = []
    for size in range(1, 14):
        root = rfc9162.root_from_leaf_hashes(hashes[:size]).hex()
        for index in range(size):
            path = [h.hex() for h in rfc9162.inclusion_proof(hashes, index, size)]
            variants = [(index, size, path), ((index + 1) % size, size, path), (index, size + 1, path)]
            if path:
                changed = path[0][:-2] + ("00" if path[0][-2:] != "00" else "01")
                variants.append((index, size, [changed, *path[1:]]))
            for i, n, p in variants:
                cases.append((i, n, entries[index].hex(), p, root))
                expected.append(reference(i, n, entries[index], p, root))
    assert expected.count(True) >= 91 and expected.count(False) >= 91  # every right proof, and the bad ones
    got = console.js(
        "async (cases) => Promise.all(cases.map("
        "([i, n, e, p, r]) => window.deconflict.verifyInclusion(i, n, e, p, r)))",
        cases,
    )
    assert got == expected
    assert console.js("(e) => window.deconflict.leafHash(e)", entries[3].hex()) == hashes[3].hex()


def _message(seeded: Server, sender: str, to: str, text: str) -> dict[str, Any]:
    body = {"code": "FREE_TEXT", "to": [to], "fields": {"text": text}}
    r = seeded.client(sender).post("/v1/hotline/messages", json=body)
    assert r.status_code == 201, r.text
    message: dict[str, Any] = r.json()["message"]
    return message


def _delivery(seeded: Server, reader: str, message_id: str, recipient: str) -> dict[str, Any]:
    r = seeded.client(reader).get(f"/v1/hotline/messages/{message_id}")
    r.raise_for_status()
    return next(d for d in r.json()["deliveries"] if d["recipient"] == recipient)


def _until(check: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_hotline_panel_on_the_real_api(console: Console, seeded: Server) -> None:
    """A message sent through the API appears in the recipient's language, with its reply
    deadline counting down, and is marked delivered once shown (a reply clicked: on the
    demo, below); the console heartbeats for its party and shows every party's line as the
    status endpoint does."""
    console.sign_in("north")  # north reads Russian
    console.wait("() => window.deconflict.stream().mode === 'live'")
    sent = _message(seeded, "south", "north", "Tanker moving to track B at 12:40Z")

    selector = f"[data-message='{sent['id']}']"
    console.page.wait_for_selector(selector, timeout=5_000)
    view = seeded.client("north").get(f"/v1/hotline/messages/{sent['id']}").json()
    assert view["language"] == "ru" and view["text"].startswith("НЕКОДИРОВАННЫЙ ТЕКСТ")
    assert console.page.text_content(f"{selector} .text") == view["text"]
    assert console.page.get_attribute(f"{selector} .text", "lang") == "ru"
    buttons = console.page.query_selector_all(f"{selector} [data-reply-button]")
    assert [b.get_attribute("data-reply-button") for b in buttons] == view["replies"]
    due = f'document.querySelector("{selector} [data-due]").textContent'
    console.page.wait_for_function(f"() => /reply due in (9|10):\\d\\d/.test({due})")
    # shown, hence delivered: the sender sees it on the server
    assert _until(lambda: _delivery(seeded, "south", sent["id"], "north")["delivered_at"])
    assert _delivery(seeded, "south", sent["id"], "north")["reply"] is None
    console.shot("hotline-message")

    # the console heartbeats for north: the status endpoint has north UP, and the panel
    # shows every party's line as that endpoint reports it (up, down or unknown)
    assert console.js("() => window.deconflict.heartbeats()") >= 1
    lines = {s["party"]: s["state"] for s in seeded.client("south").get("/v1/hotline/status").json()}
    assert lines["north"] == "up" and lines["drones"] == "unknown"
    console.page.wait_for_selector("#channels li[data-party=north][data-status=up]")
    shown = console.js(
        "() => Object.fromEntries([...document.querySelectorAll('#channels li')]"
        ".map((li) => [li.dataset.party, li.dataset.status]))"
    )
    assert shown == lines
    assert console.offsite() == []


def test_hotline_stream_reconnects_and_falls_back_to_polling(console: Console, seeded: Server) -> None:
    console.sign_in("drones")
    console.wait("() => window.deconflict.stream().mode === 'live'")
    first = _message(seeded, "north", "drones", "first")
    console.page.wait_for_selector(f"[data-message='{first['id']}']", timeout=5_000)

    # the connection drops: the console reconnects with Last-Event-ID and misses nothing,
    # and shows nothing twice
    console.js("() => window.deconflict.dropStream()")
    second = _message(seeded, "south", "drones", "sent while the stream was down")
    console.page.wait_for_selector(f"[data-message='{second['id']}']", timeout=5_000)
    console.wait("() => window.deconflict.stream().connections >= 2")
    stream_requests = [u for u in console.requests if "/v1/hotline/stream" in u]
    assert len(stream_requests) >= 2
    inbox = seeded.client("drones").get("/v1/hotline/messages", params={"box": "all"}).json()
    shown = console.js(
        "() => [...document.querySelectorAll('#messages [data-message]')].map((e) => e.dataset.message)"
    )
    assert sorted(shown) == sorted(m["id"] for m in inbox)

    # no stream at all (a proxy refusing it): the console polls the events instead
    console.page.route("**/v1/hotline/stream*", lambda route: route.abort())
    console.js("() => window.deconflict.dropStream()")
    console.wait("() => window.deconflict.stream().mode === 'polling'", timeout_ms=10_000)
    third = _message(seeded, "north", "drones", "sent while polling")
    console.page.wait_for_selector(f"[data-message='{third['id']}']", timeout=5_000)
    assert any("/v1/hotline/events?after=" in u for u in console.requests)
    console.shot("hotline-polling")
    console.page.unroute("**/v1/hotline/stream*")


@pytest.mark.parametrize("party", ["north", "shield"])
def test_conflict_arrives_through_the_stream_when_polling_is_slow(
    console: Console, seeded: Server, party: str
) -> None:
    """Polling once a minute: a conflict caused through the API still appears within 5 s,
    because the stream's event (a conflict warning to north; a notice of north's new filing
    to shield, who is party to neither side) makes the console refresh at once."""
    console.sign_in(party)
    console.wait("() => window.deconflict.stream().mode === 'live'")
    console.js("() => window.deconflict.setPollInterval(60000)")
    time.sleep(1.5)  # let the stream's replay of past events settle; no poll is due for a minute
    refreshes = console.js("() => window.deconflict.counts().refreshes")
    before = seeded.ids("/v1/conflicts")

    new, caused = _cause_conflict(seeded, _survey(seeded))
    assert len(new) == 1 and not new & before

    console.wait(
        f"() => {{ const r = window.deconflict.rendered().conflicts; return {json.dumps(sorted(new))}"
        ".every((id) => r.includes(id)); }",
        timeout_ms=5_000,
    )
    assert time.monotonic() - caused < 5
    assert console.js("() => window.deconflict.counts().refreshes") > refreshes
    assert console.page.text_content("#count-conflicts") == str(len(before | new))
    console.shot("conflict-from-stream")


def test_timeline_shows_the_shared_record_at_a_past_moment(console: Console, seeded: Server) -> None:
    console.sign_in("shield")
    assert console.page.get_attribute("[data-testid=timeline-mode]", "data-mode") == "live"
    assert console.page.text_content("[data-testid=timeline-mode]") == "LIVE"
    time.sleep(1.1)
    before_filing = datetime.now(UTC) - timedelta(seconds=0.5)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    body = {"kind": "crewed_flight", "volumes": [_box(34.2, 33.2, 0.05, start, start + timedelta(hours=1))]}
    r = seeded.client("south").post("/v1/intents", json=body)
    assert r.status_code == 201, r.text
    new = r.json()["filing"]["id"]
    console.wait(f"() => window.deconflict.sources().filings.includes({json.dumps(new)})")
    console.idle()
    live_ids = seeded.ids("/v1/intents")
    assert new in live_ids and console.page.text_content("#count-filings") == str(len(live_ids))

    # the slider moved to a second before the filing was made: the map is the shared record then
    seconds = int(before_filing.timestamp())
    console.js(
        "(s) => { const r = document.querySelector('#timeline-range'); r.value = String(s);"
        " r.dispatchEvent(new Event('input', {bubbles: true})); }",
        seconds,
    )
    console.wait("() => document.querySelector('#timeline-mode').dataset.mode === 'past'")
    console.wait(f"() => !window.deconflict.sources().filings.includes({json.dumps(new)})")
    console.idle()
    at = datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
    replay = seeded.client("shield").get("/v1/log/replay", params={"at": at}).json()
    then = {f["id"] for f in replay["filings"] if f["type"] == "intent"}
    assert new not in then and then == live_ids - {new}
    assert set(console.js("() => window.deconflict.sources()")["filings"]) == then
    assert set(console.js("() => window.deconflict.rendered()")["filings"]) == then
    assert console.page.text_content("#count-filings") == str(len(then))
    indicator = console.page.text_content("[data-testid=timeline-mode]") or ""
    assert indicator == "AT " + at.replace("T", " ")
    console.shot("timeline-past")

    # the time typed in: the same; then back to live: the filing is there again
    console.page.fill("#timeline-at", at)
    console.page.press("#timeline-at", "Enter")
    assert console.js("() => window.deconflict.at") == seconds * 1000
    console.page.click("[data-testid=timeline-live]")
    console.wait(f"() => window.deconflict.sources().filings.includes({json.dumps(new)})")
    assert console.page.text_content("[data-testid=timeline-mode]") == "LIVE"
    assert console.js("() => window.deconflict.at") is None
    console.idle()
    assert set(console.js("() => window.deconflict.rendered()")["filings"]) == live_ids
    console.shot("timeline-live")
    assert any("/v1/log/replay?at=" in u for u in console.requests)


# -- against `deconflict demo`, the scenario moving (in this order: the aircraft take off
# while the first two run) -----------------------------------------------------------------


def _api_picture(server: Server) -> dict[str, list[str]]:
    """What the API reports: each filing's volumes (`id#index`, as the console keys its
    features), each reservation's, and the tracks' ids; sorted."""

    def volumes(path: str) -> list[str]:
        return sorted(f"{f['id']}#{i}" for f in server.client("shield").get(path).json()
                      for i in range(len(f["volumes"])))  # fmt: skip

    picture = server.client("shield").get("/v1/tracks").json()
    return {
        "filings": volumes("/v1/intents"),
        "reservations": volumes("/v1/constraints"),
        "tracks": sorted(t["id"] for t in picture["tracks"]),
    }


def _map_disagreement(console: Console, server: Server) -> str | None:
    """None when the map shows exactly what the API reports, read before and after the map
    (the same answer both times, so that the picture did not move in between); else what
    differs."""
    before = _api_picture(server)
    console.idle()
    shown = console.js(
        "() => { const d = window.deconflict; return {fed: d.fed(), sources: d.sources(),"
        " rendered: d.rendered(), counts: d.counts()}; }"
    )
    texts = {k: console.page.text_content(f"#count-{k}") for k in before}
    after = _api_picture(server)
    if before != after:
        return "the picture moved while it was read"
    problems = []
    for layer, api in before.items():
        ids = {v.split("#")[0] for v in api}
        if sorted(shown["fed"][layer]) != api:  # one dropped, or given twice
            problems.append(f"{layer}: fed {sorted(shown['fed'][layer])} != API {api}")
        for view in ("sources", "rendered"):
            if sorted(shown[view][layer]) != sorted(ids):
                problems.append(f"{layer}: {view} {sorted(shown[view][layer])} != API {sorted(ids)}")
        if shown["counts"][layer] != len(ids) or texts[layer] != str(len(ids)):
            problems.append(
                f"{layer}: counted {shown['counts'][layer]}, shown {texts[layer]}, API {len(ids)}"
            )
    return "; ".join(problems) or None


def test_wilco_on_a_demo_message_is_recorded_on_the_server(demo_console: Console, demo: Server) -> None:
    """The demo's strategic conflict (north's patrol over the drone survey) sends drones a
    CONFLICT_WARNING; clicking WILCO on it in drones' console records that reply."""
    console = demo_console
    console.sign_in("drones")

    def open_warning() -> dict[str, Any] | None:
        """One still open, from a round not about to end (the round's end answers it ROGER)."""
        inbox = demo.client("drones").get("/v1/hotline/messages", params={"box": "all"}).json()
        now = datetime.fromisoformat(demo.client("drones").get("/v1/clock").json()["now"])
        return next((m for m in inbox if m["code"] == "CONFLICT_WARNING" and "WILCO" in m["replies"]
                     and not [d for d in m["deliveries"] if d["recipient"] == "drones" and d["reply"]]
                     and now - datetime.fromisoformat(m["sent_at"]) < timedelta(seconds=DURATION_S - 300)),
                    None)  # fmt: skip

    warning = _until(open_warning, timeout_s=20)
    assert warning, "the demo sent drones no conflict warning"
    selector = f"[data-message='{warning['id']}']"
    console.page.wait_for_selector(f"{selector} [data-reply-button=WILCO]", timeout=5_000)
    assert (console.page.text_content(f"{selector} .text") or "").startswith("CONFLICT WARNING")
    # its reply deadline counts down on the service's clock (the demo's: DEMO_SPEED times the real one)
    service = demo.client("drones").get("/v1/clock").json()
    held = console.js("() => window.deconflict.clock()")
    assert service["rate"] == held["rate"] == DEMO_SPEED
    assert (
        abs(held["now"] / 1000 - datetime.fromisoformat(service["now"]).timestamp()) < DEMO_SPEED
    )  # < 1 real s
    due = console.page.get_attribute(f"{selector} [data-due]", "data-due") or ""
    text = console.page.text_content(f"{selector} [data-due]") or ""
    now = console.js("() => window.deconflict.clock().now") / 1000
    m, sec = (int(v) for v in text.rsplit(" ", 1)[1].split(":"))
    shown = (m * 60 + sec) * (1 if "due in" in text else -1)
    assert abs(shown - (datetime.fromisoformat(due).timestamp() - now)) <= DEMO_SPEED + 1, (text, due)
    console.shot("warning-shown")

    console.page.click(f"{selector} [data-reply-button=WILCO]")
    console.page.wait_for_selector(f"{selector} [data-reply=WILCO]")
    got = _delivery(demo, "drones", warning["id"], "drones")
    assert got["reply"] == "WILCO" and got["replied_at"] is not None
    assert console.page.query_selector(f"{selector} [data-reply-button]") is None
    console.shot("wilco-recorded")


def test_conflict_caused_through_the_api_appears_within_5_s(demo_console: Console, demo: Server) -> None:
    """north, a party of the running demo, files over the demo's drone survey: the conflict
    is on north's map within 5 s of the API's answer."""
    console = demo_console
    console.sign_in("north")
    survey = _survey(demo, settled=True)  # not about to move or end
    before = demo.ids("/v1/conflicts")
    console.shot("before")

    new, caused = _cause_conflict(demo, survey)
    assert len(new) == 1 and not new & before

    console.wait(
        f"() => {{ const r = window.deconflict.rendered().conflicts; return {json.dumps(sorted(new))}"
        ".every((id) => r.includes(id)); }",
        timeout_ms=5_000,
    )
    shown_after_s = time.monotonic() - caused
    assert shown_after_s < 5
    console.idle()
    assert new <= set(console.js("() => window.deconflict.sources()")["conflicts"])
    console.shot("conflict-shown")
    assert console.offsite() == []


def test_demo_map_shows_what_the_api_reports(demo_console: Console, demo: Server) -> None:
    """While the demo runs (filings changing state, tracks moving every simulated 10 s),
    the map holds and draws exactly the filings, reservations and tracks the API reports."""
    console = demo_console
    console.sign_in("shield")
    assert _until(lambda: len(_api_picture(demo)["tracks"]) >= 2, timeout_s=20), "no aircraft airborne"
    first = demo.client("shield").get("/v1/tracks").json()["tracks"]
    for step in ("airborne", "moving"):
        problem: str | None = "not compared yet"
        deadline = time.monotonic() + 15
        while problem and time.monotonic() < deadline:
            problem = _map_disagreement(console, demo)
        assert problem is None, problem
        picture = _api_picture(demo)
        assert picture["reservations"] and picture["filings"]
        console.shot(step)
        time.sleep(1.0)
    later = {t["id"]: (t["lon"], t["lat"]) for t in demo.client("shield").get("/v1/tracks").json()["tracks"]}
    assert any(later.get(t["id"]) not in (None, (t["lon"], t["lat"])) for t in first)  # they moved
    assert console.offsite() == []
