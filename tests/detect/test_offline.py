"""`deconflict check FILE`'s core: a FeatureCollection in, cross-party conflicts out."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from deconflict import agreements
from deconflict.detect.offline import check_feature_collection
from deconflict.errors import InvalidInput
from deconflict.geometry.projection import LocalProjection

PLANE = LocalProjection(35.0, 33.0)


def square_coords(side_m: float, dx_m: float = 0.0, dy_m: float = 0.0) -> list[list[float]]:
    lon, lat = PLANE.inverse(
        np.array([0.0, side_m, side_m, 0.0, 0.0]) + dx_m,
        np.array([0.0, 0.0, side_m, side_m, 0.0]) + dy_m,
    )
    return [[float(x), float(y)] for x, y in zip(lon, lat, strict=True)]


def feature(
    fid: Any,
    party: str,
    geometry: dict[str, Any],
    *,
    kind: str = "uas_flight",
    lo: float = 0.0,
    hi: float = 120.0,
    start: str = "2030-06-01T12:00:00Z",
    end: str = "2030-06-01T13:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    props = {
        "party": party,
        "kind": kind,
        "altitude_lower_m": lo,
        "altitude_upper_m": hi,
        "time_start": start,
        "time_end": end,
        **extra,
    }
    return {"type": "Feature", "id": fid, "geometry": geometry, "properties": props}


def polygon(side_m: float, dx_m: float = 0.0, dy_m: float = 0.0) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [square_coords(side_m, dx_m, dy_m)]}


def point(x_m: float, y_m: float) -> dict[str, Any]:
    lon, lat = PLANE.inverse(x_m, y_m)
    return {"type": "Point", "coordinates": [float(lon), float(lat)]}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


# uas_flight: 500 m, 60 m, 60 s; crewed_flight: 9260 m, 300 m, 300 s
DOC = collection(
    # a uas square, 1 km, x and y 0..1000 m
    feature("n1", "north", polygon(1_000.0)),
    # 300 m east of n1, 30 m above it, starting 30 s after it ends: within uas buffers
    feature(
        "s1",
        "south",
        polygon(1_000.0, dx_m=1_300.0),
        lo=150.0,
        hi=300.0,
        start="2030-06-01T13:00:30Z",
        end="2030-06-01T14:00:00Z",
    ),
    # same party as n1 and overlapping it: not a cross-party conflict
    feature("n2", "north", polygon(500.0)),
    # a circle reaching x = 6000..8000 m: 5 km from n1, clear of uas buffers ...
    feature("d1", "drones", point(7_000.0, 500.0), radius_m=1_000.0),
    # ... but within a crewed flight's 9260 m of this square at x = 14000 m
    feature("s2", "south", polygon(200.0, dx_m=14_000.0), kind="crewed_flight"),
)


def test_known_answer() -> None:
    rows = list(check_feature_collection(DOC, agreements.load()))
    assert [(r["a"], r["b"]) for r in rows] == [("n1", "s1"), ("d1", "s2")]
    first = rows[0]
    assert (first["party_a"], first["party_b"]) == ("north", "south")
    assert first["time_start"] == "2030-06-01T13:00:00Z"
    assert first["time_end"] == "2030-06-01T13:00:30Z"
    assert first["horizontal_separation_m"] == pytest.approx(300.0, abs=0.01)
    assert first["vertical_separation_m"] == 30.0
    assert first["time_separation_s"] == 30.0
    second = rows[1]
    assert (second["party_a"], second["party_b"]) == ("drones", "south")
    assert second["horizontal_buffer_m"] == 9_260.0
    expected = np.hypot(7_000.0, 300.0) - 1_000.0  # centre to the square's corner, less r
    assert second["horizontal_separation_m"] == pytest.approx(expected, abs=0.05)
    assert (second["time_start"], second["time_end"]) == (
        "2030-06-01T12:00:00Z",
        "2030-06-01T13:00:00Z",
    )


def test_overrides_via_with_buffers() -> None:
    assert list(check_feature_collection(DOC, agreements.load().with_buffers(0.0, 0.0, 0.0))) == []
    wide = agreements.load().with_buffers(horizontal_m=13_010.0)
    pairs = [(r["a"], r["b"]) for r in check_feature_collection(DOC, wide)]
    # n1 to s2 is 13 km (x 1000 -> 14000); n2 to s2 is 13.5 km; s1 and s2 are one party
    assert pairs == [
        ("n1", "s1"),
        ("n1", "d1"),
        ("n1", "s2"),
        ("s1", "n2"),
        ("s1", "d1"),
        ("n2", "d1"),
        ("d1", "s2"),
    ]


# --- errors -------------------------------------------------------------------------------


def errors_of(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as exc:
        check_feature_collection(doc, agreements.load())
    return [(e.field, e.rule) for e in exc.value.errors]


def test_unknown_kind_names_the_feature_and_the_known_kinds() -> None:
    doc = collection(DOC["features"][0], feature("x", "south", polygon(100.0), kind="ballet"))
    assert errors_of(doc) == [
        (
            "features[1].properties.kind",
            "unknown kind 'ballet' (the agreement has: air_defence_activity, crewed_flight,"
            " exercise, reservation, uas_flight)",
        )
    ]


def test_missing_and_duplicate_ids_and_missing_party() -> None:
    no_id = feature("z", "north", polygon(100.0))
    del no_id["id"]
    no_party = feature("p", "north", polygon(100.0))
    del no_party["properties"]["party"]
    doc = collection(
        feature("a", "north", polygon(100.0)),
        no_id,
        feature("a", "south", polygon(100.0)),
        no_party,
    )
    assert errors_of(doc) == [
        ("features[1].id", "is required and must be a non-empty string or a number"),
        ("features[2].id", "duplicate id 'a' (also features[0])"),
        ("features[3].properties.party", "is required and must be a non-empty string"),
    ]


def test_volume_errors_are_prefixed_with_the_feature() -> None:
    bad_alt = feature("a", "north", polygon(100.0), lo=200.0, hi=100.0)
    bow = feature(
        "b",
        "south",
        {"type": "Polygon", "coordinates": [[[35, 33], [35.1, 33.1], [35.1, 33], [35, 33.1], [35, 33]]]},
    )
    unknown = feature("c", "south", polygon(100.0), colour="red")
    fields = errors_of(collection(bad_alt, bow, unknown))
    assert fields == [
        ("features[0].properties.altitude_upper_m", "must be greater than altitude_lower_m"),
        ("features[1].geometry.coordinates[0]", "polygon is self-intersecting"),
        ("features[2].properties.colour", "unknown property"),
    ]


def test_area_cap_comes_from_the_agreement() -> None:
    huge = feature("a", "north", polygon(200_000.0))
    [(field, text)] = errors_of(collection(huge))
    assert field == "features[0].geometry.coordinates[0]"
    assert text.endswith("exceeds the agreement's cap of 20,000 km²")


def test_not_a_feature_collection() -> None:
    assert errors_of({"type": "Feature"}) == [("type", "must be 'FeatureCollection'")]
    assert errors_of({"type": "FeatureCollection"}) == [("features", "must be an array of GeoJSON Features")]


def test_numeric_ids_are_kept_as_text() -> None:
    doc = copy.deepcopy(DOC)
    doc["features"][0]["id"] = 7
    rows = list(check_feature_collection(doc, agreements.load()))
    assert rows[0]["a"] == "7"
