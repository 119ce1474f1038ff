"""The agreement file: the shipped default loads; every error names the key and the rule."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

from deconflict import agreements
from deconflict.errors import AgreementError
from deconflict.model.agreement import REQUIRED_KINDS, Agreement, ConflictAction, LateAction


def default_doc() -> dict[str, Any]:
    text = resources.files("deconflict.agreements").joinpath("default.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_default_agreement_loads_with_every_required_kind() -> None:
    a = agreements.load()
    assert set(REQUIRED_KINDS) <= set(a.kinds)
    assert a.conflict_action is ConflictAction.BLOCK
    assert a.late_notice_action is LateAction.FLAG
    assert a.kinds["crewed_flight"].horizontal_buffer_m == 9260
    assert {p.id for p in a.parties} == {"north", "south", "drones", "shield"}


def test_separation_takes_the_larger_buffer_per_dimension() -> None:
    a = agreements.load()
    s = a.separation("uas_flight", "air_defence_activity")
    assert (s.horizontal_m, s.vertical_m, s.time_s) == (18520, 600, 600)
    assert a.separation("uas_flight", "uas_flight").horizontal_m == 500


def mutate(path: str, value: Any) -> dict[str, Any]:
    doc = default_doc()
    *parents, leaf = path.split(".")
    node: Any = doc
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return doc


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "key", "rule"),
    [
        ("agreement.conflict_action", "shoot", "agreement.conflict_action", "one of"),
        ("agreement.late_notice_action", DELETE, "agreement.late_notice_action", "one of"),
        ("agreement.max_volume_area_km2", 0, "agreement.max_volume_area_km2", "> 0"),
        ("agreement.max_volume_duration_s", "a day", "agreement.max_volume_duration_s", "number"),
        ("agreement.max_volumes_per_filing", 2.5, "agreement.max_volumes_per_filing", "whole"),
        ("agreement.colour", "red", "agreement.colour", "unknown key"),
        ("kinds.uas_flight.horizontal_buffer_m", -1, "kinds.uas_flight.horizontal_buffer_m", ">= 0"),
        ("kinds.uas_flight.min_notice_s", DELETE, "kinds.uas_flight.min_notice_s", "required"),
        ("kinds.uas_flight.priority", 1.5, "kinds.uas_flight.priority", "whole number"),
        ("kinds.uas_flight.weapon", "x", "kinds.uas_flight.weapon", "unknown key"),
        ("kinds.exercise", DELETE, "kinds.exercise", "required"),
        ("kinds.Bad Kind", {}, "kinds.Bad Kind", "kind names"),
    ],
)
def test_bad_agreement_names_key_and_rule(path: str, value: Any, key: str, rule: str) -> None:
    with pytest.raises(AgreementError) as err:
        Agreement.from_mapping(mutate(path, value))
    assert err.value.key == key
    assert rule in err.value.rule


def test_bad_parties_are_named() -> None:
    doc = default_doc()
    doc["parties"][1]["id"] = doc["parties"][0]["id"]
    with pytest.raises(AgreementError) as err:
        Agreement.from_mapping(doc)
    assert err.value.key == "parties[1].id" and "duplicate" in err.value.rule
    doc = default_doc()
    doc["parties"][2]["language"] = "English please"
    with pytest.raises(AgreementError) as err:
        Agreement.from_mapping(doc)
    assert err.value.key == "parties[2].language"


def test_invalid_toml_is_reported() -> None:
    with pytest.raises(AgreementError) as err:
        agreements.loads("[agreement\nname=")
    assert "TOML" in err.value.rule


def test_with_buffers_overrides_every_kind() -> None:
    a = agreements.load().with_buffers(0.0, None, 5.0)
    assert all(k.horizontal_buffer_m == 0 and k.time_buffer_s == 5 for k in a.kinds.values())
    assert a.kinds["crewed_flight"].vertical_buffer_m == 300


def test_tactical_zone_per_pair_of_kinds_takes_the_larger_per_dimension() -> None:
    a = agreements.load()
    assert a.tactical_same_party is False
    assert (a.conformance_tolerance_m, a.conformance_tolerance_s) == (50.0, 30.0)
    drone = a.kinds["uas_flight"].protected_zone
    assert (drone.radius_m, drone.half_height_m, drone.lookahead_s) == (50, 15, 30)
    z = a.protected_zone("uas_flight", "reservation")
    assert (z.radius_m, z.half_height_m, z.lookahead_s) == (1852, 150, 120)
    z = a.protected_zone("crewed_flight", "air_defence_activity")
    assert (z.radius_m, z.half_height_m, z.lookahead_s) == (9260, 304.8, 300)


def test_a_kind_without_tactical_keys_takes_its_strategic_buffers() -> None:
    doc = default_doc()
    for key in ("tactical_radius_m", "tactical_half_height_m", "lookahead_s"):
        del doc["kinds"]["exercise"][key]
    doc["agreement"]["tactical_same_party"] = True
    a = Agreement.from_mapping(doc)
    z = a.kinds["exercise"].protected_zone
    assert (z.radius_m, z.half_height_m, z.lookahead_s) == (9260, 300, 600)
    assert a.tactical_same_party is True
    assert a.with_buffers(1.0).tactical_same_party is True
    assert a.with_buffers(1.0).kinds["uas_flight"].protected_zone.radius_m == 50


@pytest.mark.parametrize(
    ("path", "value", "key", "rule"),
    [
        ("kinds.uas_flight.tactical_radius_m", 0, "kinds.uas_flight.tactical_radius_m", "> 0"),
        ("kinds.uas_flight.lookahead_s", "soon", "kinds.uas_flight.lookahead_s", "finite number"),
        ("kinds.uas_flight.tactical_half_height_m", DELETE, "kinds.uas_flight.tactical_half_height_m",
         "is required with tactical_radius_m, lookahead_s"),
        ("agreement.tactical_same_party", "yes", "agreement.tactical_same_party", "true or false"),
        ("agreement.conformance_tolerance_m", -1, "agreement.conformance_tolerance_m", "within [0, 1000000)"),
        ("agreement.conformance_tolerance_s", "30", "agreement.conformance_tolerance_s", "a number"),
        ("agreement.conformance_tolerance_s", True, "agreement.conformance_tolerance_s", "a number"),
    ],
)  # fmt: skip
def test_bad_tactical_keys_name_key_and_rule(path: str, value: Any, key: str, rule: str) -> None:
    with pytest.raises(AgreementError) as err:
        Agreement.from_mapping(mutate(path, value))
    assert err.value.key == key
    assert rule in err.value.rule
