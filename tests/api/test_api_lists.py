"""The list routes through a real server: pages (`limit`, `after`, RFC 8288 `Link`
rel="next") that add up to the whole list, and entity tags that answer 304 while
nothing has changed and change with every write that changes the list."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import Live, circle, polygon

C = (35.0, 33.0)


def spot(i: int) -> tuple[float, float]:
    """Places 20 km apart: filings there meet nothing but what is filed on purpose."""
    return (C[0] + 0.2 * (i % 5), C[1] + 0.2 * (i // 5))


def box_deg(centre: tuple[float, float], half: float) -> dict[str, Any]:
    """A lon/lat square `half` degrees each side of `centre` (2 h to 3 h ahead)."""
    lon, lat = centre
    return polygon(
        [(lon - half, lat - half), (lon + half, lat - half), (lon + half, lat + half)]
        + [(lon - half, lat + half)]
    )


def filed(live: Live, party: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    r = live.client(party).post(path, json=payload)
    assert r.status_code == 201, r.text
    return dict(r.json())


def walk(client: httpx.Client, path: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every item, following the Link headers; and how many pages that took."""
    items: list[dict[str, Any]] = []
    r = client.get(path, params=params)
    pages = 1
    while True:
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page) <= int(params.get("limit", 1000))
        items += page
        if "next" not in r.links:
            return items, pages
        r = client.get(r.links["next"]["url"])
        pages += 1


def test_filings_come_in_pages_that_add_up_to_the_list(live: Live) -> None:
    ids = [
        filed(live, "north", "/v1/intents", {"kind": "uas_flight", "volumes": [circle(*spot(i), 200)]})[
            "filing"
        ]["id"]
        for i in range(7)
    ]
    filed(live, "north", "/v1/constraints", {"kind": "reservation", "volumes": [circle(*spot(9), 200)]})
    filed(live, "south", "/v1/intents", {"kind": "uas_flight", "volumes": [circle(*spot(11), 200)]})
    c = live.client("shield")
    whole = c.get("/v1/intents").json()
    assert "link" not in c.get("/v1/intents").headers
    assert [f["id"] for f in whole] == sorted(f["id"] for f in whole)
    assert {f["type"] for f in whole} == {"intent"} and len(whole) == 8
    for limit in (1, 3, 8):
        items, pages = walk(c, "/v1/intents", limit=limit)
        assert items == whole
        assert pages == -(-8 // limit)  # a last page that is full links to nothing
    # the other filters ride along the links
    mine, pages = walk(c, "/v1/intents", owner="north", limit=2)
    assert [f["id"] for f in mine] == sorted(ids) and pages == 4
    first = c.get("/v1/intents", params={"owner": "north", "limit": 2})
    assert "owner=north" in first.links["next"]["url"]
    assert [f["type"] for f in c.get("/v1/constraints").json()] == ["constraint"]
    # a cursor is any id: the page starts after it
    assert [f["id"] for f in c.get("/v1/intents", params={"after": whole[4]["id"]}).json()] == [
        f["id"] for f in whole[5:]
    ]


def test_conflicts_come_in_pages_in_detection_order(live: Live) -> None:
    low = filed(live, "drones", "/v1/intents", {"kind": "uas_flight", "volumes": [circle(*C, 3000)]})[
        "filing"
    ]
    for i in range(5):
        payload = {"kind": "crewed_flight", "volumes": [circle(*C, 500 + 100 * i)], "key": [low["ovn"]]}
        assert len(filed(live, "north", "/v1/intents", payload)["conflicts"]) == 1
    c = live.client("shield")
    whole = c.get("/v1/conflicts").json()
    assert len(whole) == 5
    assert [(x["detected_at"], x["id"]) for x in whole] == sorted((x["detected_at"], x["id"]) for x in whole)
    for limit in (1, 2, 5):
        assert walk(c, "/v1/conflicts", limit=limit)[0] == whole
    assert walk(c, "/v1/conflicts", party="drones", limit=2)[0] == whole
    assert c.get("/v1/conflicts", params={"party": "south", "limit": 2}).json() == []
    after = c.get("/v1/conflicts", params={"after": whole[1]["id"], "limit": 2})
    assert [x["id"] for x in after.json()] == [x["id"] for x in whole[2:4]]


def test_an_area_query_comes_in_pages_that_add_up_to_its_answer(live: Live) -> None:
    # 9 filings inside a 100 km circle (one with two volumes), 1 outside it, 1 later
    inside = [
        filed(live, "north", "/v1/intents", {"kind": "uas_flight", "volumes": [circle(*spot(i), 200)]})[
            "filing"
        ]["id"]
        for i in range(8)
    ]
    two = {
        "kind": "uas_flight",
        "volumes": [circle(*spot(8), 200), circle(*spot(8), 300, start=200, end=220)],
    }
    inside.append(filed(live, "south", "/v1/intents", two)["filing"]["id"])
    for far in (circle(C[0] + 3, C[1], 200), circle(*spot(1), 200, start=300, end=360)):
        filed(live, "south", "/v1/intents", {"kind": "uas_flight", "volumes": [far]})
    area = {"area": circle(C[0] + 0.4, C[1] + 0.2, 100_000, start=0, end=240)}
    c = live.client("shield")
    whole = c.post("/v1/query", json=area)
    assert whole.status_code == 200 and "link" not in whole.headers and "etag" not in whole.headers
    features = whole.json()["features"]
    ids = [f["properties"]["filing_id"] for f in features]
    assert ids == sorted(ids) and sorted(set(ids)) == sorted(inside)
    assert len(features) == 10  # one a volume: the filing with two gives two
    for limit in (1, 4, 9):
        got: list[dict[str, Any]] = []
        r = c.post("/v1/query", params={"limit": limit}, json=area)
        pages = 1
        while True:
            assert r.status_code == 200, r.text
            page = r.json()["features"]
            assert len({f["properties"]["filing_id"] for f in page}) <= limit
            got += page
            if "next" not in r.links:
                break
            assert f"limit={limit}" in r.links["next"]["url"]
            r = c.post(r.links["next"]["url"], json=area)  # the same body to the next link
            pages += 1
        assert got == features
        assert pages == -(-9 // limit)
    # a cursor is any id: the page starts after it
    after = c.post("/v1/query", params={"after": ids[3]}, json=area).json()["features"]
    assert after == [f for f in features if f["properties"]["filing_id"] > ids[3]]
    # an area reaches at most 1,500 km from its centre (its cells, and the planes it is
    # measured in, stay bounded): a 5,000 km circle and a 28-degree square are refused
    before = live.snapshot()
    for big, field in [
        (circle(*C, 5_000_000), "area.properties.radius_m"),
        (box_deg(C, 14.0), "area.geometry.coordinates[0]"),
    ]:
        r = c.post("/v1/query", json={"area": big})
        assert r.status_code == 422, r.text
        (e,) = r.json()["errors"]
        assert e["field"] == field and e["rule"] == "must lie within 1,500 km of its centre", e
    assert live.snapshot() == before
    assert c.post("/v1/query", json={"area": box_deg(C, 9.0)}).status_code == 200  # 18 degrees
    for params in ({"limit": 0}, {"after": "-a"}, {"after": "a\x00"}):
        r = c.post("/v1/query", params=params, json=area)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] in {"limit", "after"}, r.text


def test_an_area_query_gives_the_conflicts_of_its_pages_filings(live: Live) -> None:
    # a survey in the area, two flights over it (two conflicts); a pair far away (one)
    far = (C[0] + 3, C[1])
    sides = []
    for where in (C, far):
        low = filed(live, "drones", "/v1/intents", {"kind": "uas_flight", "volumes": [circle(*where, 3000)]})
        sides.append(low["filing"])
    for i, where in enumerate((C, C, far)):
        key = [sides[0 if where == C else 1]["ovn"]]
        payload = {"kind": "crewed_flight", "volumes": [circle(*where, 500 + 100 * i)], "key": key}
        assert len(filed(live, "north", "/v1/intents", payload)["conflicts"]) == 1
    area = {"area": circle(*C, 10_000)}
    c = live.client("shield")
    every = {x["id"]: x for x in c.get("/v1/conflicts").json()}
    assert len(every) == 3
    plain = c.post("/v1/query", json=area).json()
    assert "conflicts" not in plain and len(plain["features"]) == 3
    whole = c.post("/v1/query", params={"conflicts": "open"}, json=area).json()
    near = [x for x in every.values() if x["a"]["id"] != sides[1]["id"] and x["b"]["id"] != sides[1]["id"]]
    assert whole["conflicts"] == sorted(near, key=lambda x: (x["detected_at"], x["id"]))  # as the list
    assert whole["features"] == plain["features"]
    # a page lists the conflicts of its own filings: the survey's page both, a flight's its own
    seen: dict[str, int] = {}
    r = c.post("/v1/query", params={"conflicts": "open", "limit": 1}, json=area)
    while True:
        page = r.json()
        (fid,) = {f["properties"]["filing_id"] for f in page["features"]}
        assert page["conflicts"] == [x for x in whole["conflicts"] if fid in (x["a"]["id"], x["b"]["id"])]
        for x in page["conflicts"]:
            seen[x["id"]] = seen.get(x["id"], 0) + 1
        if "next" not in r.links:
            break
        assert "conflicts=open" in r.links["next"]["url"]
        r = c.post(r.links["next"]["url"], json=area)
    assert seen == {x["id"]: 2 for x in near}  # on the survey's page and on the flight's
    closed = c.post("/v1/query", params={"conflicts": "closed"}, json=area).json()
    assert closed["conflicts"] == []
    r = c.post("/v1/query", params={"conflicts": "maybe"}, json=area)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "conflicts", r.text


def test_bad_page_parameters_name_the_field(live: Live) -> None:
    c = live.client("north")
    before = live.snapshot()
    for params, field in [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "x" * 129}, "after"),
        ({"after": "a\x00b"}, "after"),  # PostgreSQL's text holds no NUL: refused before it
        ({"after": "-a"}, "after"),
    ]:
        for path in ("/v1/intents", "/v1/constraints", "/v1/conflicts"):
            r = c.get(path, params=params)
            assert r.status_code == 422, (path, params, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert any(field in e["field"] for e in r.json()["errors"]), r.text
    # party ids as the registry spells them (a NUL once reached PostgreSQL: 503)
    for path, params in [
        ("/v1/conflicts", {"party": "a\x00"}),
        ("/v1/intents", {"owner": "a\x00"}),
        ("/v1/constraints", {"owner": "North"}),
        ("/v1/parties/a%00b/keys", {}),
    ]:
        r = c.get(path, params=params)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["errors"][0]["field"] in {"party", "owner", "party_id"}, r.text
    r = c.post("/v1/hotline/messages", json={"code": "CHANNEL_CHECK", "to": ["so\x00uth"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("to"), r.text
    r = c.get("/v1/conflicts", params={"after": "no-such-conflict"})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "after", "rule": "names no conflict"}]
    assert live.snapshot() == before


def test_an_unchanged_list_answers_304_until_a_write_changes_it(live: Live) -> None:
    north, south = live.client("north"), live.client("south")
    low = filed(live, "drones", "/v1/intents", {"kind": "uas_flight", "volumes": [circle(*C, 3000)]})[
        "filing"
    ]
    first = north.get("/v1/intents")
    tag = first.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')
    for sent in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        again = north.get("/v1/intents", headers={"If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.content == b""
        assert again.headers["etag"] == tag
    assert north.get("/v1/intents", headers={"If-None-Match": '"other"'}).json() == first.json()
    # each party sees its own view of the same list, under its own tag
    assert south.get("/v1/intents").headers["etag"] != tag
    # writes that store no filing leave the lists as they were: still 304
    r = south.post(
        "/v1/hotline/messages", json={"code": "FREE_TEXT", "to": ["north"], "fields": {"text": "hi"}}
    )
    assert r.status_code == 201, r.text
    assert north.post("/v1/hotline/heartbeat").status_code == 200
    assert north.get("/v1/intents", headers={"If-None-Match": tag}).status_code == 304

    def changed(path: str, old: str, client: httpx.Client = north) -> str:
        r = client.get(path, headers={"If-None-Match": old})
        assert r.status_code == 200, r.text
        assert r.headers["etag"] != old
        return str(r.headers["etag"])

    payload = {"kind": "crewed_flight", "volumes": [circle(*C, 500)], "key": [low["ovn"]]}
    high = filed(live, "north", "/v1/intents", payload)
    tag = changed("/v1/intents", tag)
    conflicts_tag = north.get("/v1/conflicts").headers["etag"]
    assert len(north.get("/v1/conflicts", headers={"If-None-Match": "x"}).json()) == 1
    gone = live.client("drones").delete(f"/v1/intents/{low['id']}", params={"ovn": low["ovn"]})
    assert gone.status_code == 200
    # the withdrawal ended the filing and closed the conflict: both lists changed
    assert changed("/v1/conflicts", conflicts_tag) != conflicts_tag
    tag = changed("/v1/intents", tag)
    assert [f["id"] for f in north.get("/v1/intents").json()] == [high["filing"]["id"]]
    assert north.get("/v1/conflicts", headers={"If-None-Match": "x"}).json() == []


def test_hotline_messages_come_in_pages_newest_first(live: Live) -> None:
    north, south = live.client("north"), live.client("south")
    sent = []
    for i in range(5):
        r = north.post(
            "/v1/hotline/messages", json={"code": "FREE_TEXT", "to": ["south"], "fields": {"text": f"n{i}"}}
        )
        assert r.status_code == 201, r.text
        sent.append(r.json()["message"]["id"])
    r = south.post(
        "/v1/hotline/messages", json={"code": "FREE_TEXT", "to": ["north"], "fields": {"text": "s"}}
    )
    mine = r.json()["message"]["id"]
    whole = south.get("/v1/hotline/messages", params={"box": "all"}).json()
    assert [m["id"] for m in whole] == [mine, *reversed(sent)]
    for box, want in [("in", list(reversed(sent))), ("all", [mine, *reversed(sent)]), ("out", [mine])]:
        for limit in (1, 2, 6):
            items, pages = walk(south, "/v1/hotline/messages", box=box, limit=limit)
            assert [m["id"] for m in items] == want, (box, limit)
            assert pages == max(1, -(-len(want) // limit)), (box, limit)
    r = south.get("/v1/hotline/messages", params={"before": "0no-such-message"})
    assert r.status_code == 422 and r.json()["errors"] == [{"field": "before", "rule": "names no message"}]
