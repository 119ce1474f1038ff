"""The agreement's hotline terms: defaults, the shipped values, and errors naming key and rule."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

from deconflict import agreements
from deconflict.errors import AgreementError
from deconflict.model.agreement import Agreement, Deadlines, DownAction, HotlineRules


def doc() -> dict[str, Any]:
    text = resources.files("deconflict.agreements").joinpath("default.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_shipped_terms_and_escalation_contacts() -> None:
    a = agreements.load()
    assert a.hotline.down_after_s == 90 and a.hotline.heartbeat_period_s == 30
    assert a.hotline.down_filings is DownAction.LOWEST_PRIORITY and a.hotline.delivery_retries == 3
    assert a.hotline.deadlines["EMERGENCY"] == Deadlines(10, 30)
    south = a.party("south")
    assert south is not None and south.escalation[0] == "Duty officer, southern air operations"


def test_without_a_hotline_table_the_defaults_apply() -> None:
    d = doc()
    del d["hotline"]
    for p in d["parties"]:
        del p["escalation"]
    a = Agreement.from_mapping(d)
    assert a.hotline == HotlineRules() and all(p.escalation == () for p in a.parties)


@pytest.mark.parametrize(
    ("change", "key", "rule"),
    [
        ({"hotline": {"down_after_s": 10}}, "hotline.down_after_s", "at least heartbeat_period_s"),
        ({"hotline": {"heartbeat_period_s": 0}}, "hotline.heartbeat_period_s", "> 0"),
        ({"hotline": {"down_filings": "shoot"}}, "hotline.down_filings", "one of"),
        ({"hotline": {"delivery_retries": 2.5}}, "hotline.delivery_retries", "whole number"),
        ({"hotline": {"colour": 1}}, "hotline.colour", "unknown key"),
        (
            {"hotline": {"deadlines": {"EMERGENCY": {"delivery_s": 10}}}},
            "hotline.deadlines.EMERGENCY.reply_s",
            "required",
        ),
        ({"hotline": {"deadlines": {"bad code": {}}}}, "hotline.deadlines.bad code", "message code"),
        ({"parties": {"0": {"escalation": "the boss"}}}, "parties[0].escalation", "list"),
    ],
)
def test_bad_terms_name_key_and_rule(change: dict[str, Any], key: str, rule: str) -> None:
    d = doc()
    if "hotline" in change:
        d["hotline"].update(change["hotline"])
    else:
        d["parties"][0].update(change["parties"]["0"])
    with pytest.raises(AgreementError) as err:
        Agreement.from_mapping(d)
    assert err.value.key == key
    assert rule in err.value.rule


def test_a_deadline_for_a_code_the_catalogue_lacks_is_refused() -> None:
    text = resources.files("deconflict.agreements").joinpath("default.toml").read_text("utf-8")
    text += "\n[hotline.deadlines.SMOKE_SIGNAL]\ndelivery_s = 1\nreply_s = 2\n"
    with pytest.raises(AgreementError) as err:
        agreements.loads(text)
    assert err.value.key == "hotline.deadlines.SMOKE_SIGNAL"
    assert "not a code of the message catalogue" in err.value.rule
