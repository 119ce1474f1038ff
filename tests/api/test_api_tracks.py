"""Track ingestion through the real server, SQLite and PostgreSQL: JSON and Arrow IPC,
stale reports counted, bad rows refused by name with nothing applied, the picture."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pyarrow as pa
from conftest import T0, Live

from deconflict.service.reports import ARROW_MEDIA_TYPE

LON0, LAT0 = 35.0, 33.0


def at_s(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def report(track: str, t: float = 0.0, **over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "track": track, "time": at_s(t), "lat": LAT0, "lon": LON0, "alt_m": 1000.0,
        "gs_mps": 100.0, "trk_deg": 90.0, "vs_mps": 0.0,
    }  # fmt: skip
    r.update(over)
    return r


def arrow(rows: list[dict[str, Any]]) -> bytes:
    names = dict.fromkeys(k for r in rows for k in r)
    cols: dict[str, Any] = {k: [r.get(k) for r in rows] for k in names}
    cols["time"] = pa.array(
        [(T0 + timedelta(seconds=float(r["_t"]))) for r in rows], type=pa.timestamp("us", "UTC")
    )
    cols.pop("_t", None)
    table = pa.table(cols)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def post(live: Live, party: str, reports: list[dict[str, Any]]) -> Any:
    return live.client(party).post("/v1/tracks", json={"reports": reports})


def test_json_batch_is_applied_and_shown_in_the_picture(live: Live) -> None:
    r = post(live, "north", [report("N1", callsign="RFF101", icao24="a1b2c3"), report("N2", lat=33.1)])
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2 and r.json()["ignored_stale"] == 0 and r.json()["tracks"] == 2
    pic = live.client("south").get("/v1/tracks").json()
    assert pic["count"] == 2
    n1 = next(t for t in pic["tracks"] if t["id"] == "north/N1")
    assert (n1["party"], n1["callsign"], n1["icao24"], n1["lat"], n1["kind"]) == (
        "north",
        "RFF101",
        "a1b2c3",
        LAT0,
        "(unknown)",
    )
    assert n1["time"] == T0.timestamp()


def test_track_ids_are_per_party(live: Live) -> None:
    assert post(live, "north", [report("T1")]).status_code == 200
    assert post(live, "south", [report("T1", lat=33.2)]).status_code == 200
    ids = {t["id"]: t["lat"] for t in live.client("north").get("/v1/tracks").json()["tracks"]}
    assert ids == {"north/T1": LAT0, "south/T1": 33.2}


def test_older_reports_are_ignored_and_counted(live: Live) -> None:
    live.clock.advance(30)
    assert post(live, "north", [report("N1", 20.0, lat=33.05)]).json()["accepted"] == 1
    r = post(live, "north", [report("N1", 10.0, lat=33.9), report("N2", 10.0)])
    assert r.json() == {"accepted": 1, "ignored_stale": 1, "tracks": 2, "alerts": [], "transitions": []}
    # within one batch, the newest report of a track wins whatever the order
    r = post(live, "north", [report("N3", 25.0, lat=33.3), report("N3", 21.0, lat=33.4)])
    assert r.json()["accepted"] == 2 and r.json()["ignored_stale"] == 0
    pic = {t["id"]: t for t in live.client("north").get("/v1/tracks").json()["tracks"]}
    assert pic["north/N1"]["lat"] == 33.05
    assert pic["north/N3"]["lat"] == 33.3 and pic["north/N3"]["time"] == T0.timestamp() + 25


def test_bad_rows_are_refused_by_name_and_nothing_is_applied(live: Live) -> None:
    good = report("N1")
    bad = [
        good,
        report("N2", lat=91.0),
        report("N3", trk_deg=360.0),
        report("N4", gs_mps=-1),
        report("N5", icao24="xyz"),
        {k: v for k, v in report("N6").items() if k != "alt_m"},
        report("N7", time="2030-06-01T12:00:00+02:00"),
        report("N8", kind="balloon"),
        report("", vs_mps=1.0),
        report("N9", intent="nope"),
    ]
    r = post(live, "north", bad)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"]: e["rule"] for e in r.json()["errors"]}
    assert "within [-90, 90]" in fields["reports[1].lat"]
    assert "within [0, 360)" in fields["reports[2].trk_deg"]
    assert "reports[3].gs_mps" in fields
    assert "hexadecimal" in fields["reports[4].icao24"]
    assert "reports[5].alt_m" in fields
    assert "RFC 3339 UTC" in fields["reports[6].time"]
    assert "kind of the agreement" in fields["reports[7].kind"]
    assert "reports[8].track" in fields
    assert live.client("north").get("/v1/tracks").json()["count"] == 0
    # an intent that does not exist (or is not the caller's) is refused too
    r = post(live, "north", [good, report("N9", intent="nope")])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reports[1].intent"
    assert live.client("north").get("/v1/tracks").json()["count"] == 0
    # a report from the future, an unknown field, a body that is not a batch
    r = post(live, "north", [report("N1", 60.0)])
    assert r.status_code == 422 and "ahead of the server's clock" in r.json()["errors"][0]["rule"]
    r = post(live, "north", [report("N1", target="x")])
    assert r.json()["errors"][0]["field"] == "reports[0].target"
    r = live.client("north").post("/v1/tracks", json=[report("N1")])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reports"


def test_only_operators_report_and_a_caller_is_needed(live: Live) -> None:
    assert post(live, "shield", [report("S1")]).status_code == 403
    assert live.client(None).post("/v1/tracks", json={"reports": [report("X")]}).status_code == 401


def test_arrow_ipc_batch(live: Live) -> None:
    rows = [dict(report("A1"), _t=0.0), dict(report("A2", lat=33.01, callsign="ABC1"), _t=0.0)]
    r = live.client("drones").post(
        "/v1/tracks", content=arrow(rows), headers={"content-type": ARROW_MEDIA_TYPE}
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    pic = {t["id"]: t for t in live.client("drones").get("/v1/tracks").json()["tracks"]}
    assert pic["drones/A2"]["lat"] == 33.01 and pic["drones/A2"]["callsign"] == "ABC1"
    # the same rules as JSON, same names
    rows[1]["lon"] = 200.0
    r = live.client("drones").post(
        "/v1/tracks", content=arrow(rows), headers={"content-type": ARROW_MEDIA_TYPE}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reports[1].lon"
    r = live.client("drones").post(
        "/v1/tracks", content=b"not arrow", headers={"content-type": ARROW_MEDIA_TYPE}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "(body)"
    assert pic["drones/A2"]["lon"] == LON0
