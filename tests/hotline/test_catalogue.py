"""The message catalogue: complete in every language, validated, rendered unambiguously."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
from hotline_samples import SAMPLE, sample_fields

from deconflict.errors import InvalidInput
from deconflict.hotline import catalogue, fields
from deconflict.hotline.catalogue import REQUIRED_CODES, CatalogueError, FieldType
from deconflict.hotline.render import FSI, LRI, PDI, RLI, instant, render, render_reply, strip_isolates

LANGUAGES = ("en", "ru", "he", "ar")
CAT = catalogue.default()


def raw() -> dict[str, Any]:
    text = resources.files("deconflict.hotline").joinpath("catalogue.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_every_code_has_every_language_and_names_only_its_fields() -> None:
    """Read from the file itself, not through the loader: a code missing a language,
    or a template naming a field its code lacks, fails here."""
    doc = raw()
    assert tuple(doc["catalogue"]["languages"]) == LANGUAGES
    assert set(REQUIRED_CODES) <= set(doc["codes"])
    forms = [(name, code) for name, code in doc["codes"].items()]
    forms += [
        (f"{n}.{v}", form) for n, c in doc["codes"].items() for v, form in c.get("variants", {}).items()
    ]
    for name, code in forms:
        assert set(code["text"]) == set(LANGUAGES), name
        for lang, template in code["text"].items():
            used = set(re.findall(r"\{([a-z_]+)\}", template))
            assert used <= set(code["fields"]), (name, lang, used - set(code["fields"]))
    for name, texts in {**doc["replies"], **doc["kinds"]}.items():
        assert set(texts) == set(LANGUAGES), name


SCRIPT = {"ru": "CYRILLIC", "he": "HEBREW", "ar": "ARABIC"}


@pytest.mark.parametrize("lang", ["ru", "he", "ar"])
def test_translations_are_written_in_their_script(lang: str) -> None:
    """No template is English left untranslated: its words are in the language's script."""
    doc = raw()
    texts = [c["text"][lang] for c in doc["codes"].values()] + [r[lang] for r in doc["replies"].values()]
    texts += [v["text"][lang] for c in doc["codes"].values() for v in c.get("variants", {}).values()]
    for text in texts:
        letters = [ch for ch in re.sub(r"\{[a-z_]+\}|WGS84", "", text) if ch.isalpha()]
        native = [ch for ch in letters if unicodedata.name(ch).startswith(SCRIPT[lang])]
        assert len(native) >= 0.9 * len(letters), text


def test_required_codes_and_identity_query_replies() -> None:
    assert set(REQUIRED_CODES) <= set(CAT.codes)
    assert CAT.codes["IDENTITY_QUERY"].replies == ("MINE", "NOT_MINE", "UNKNOWN")
    assert CAT.codes["FREE_TEXT"].uncoded and not CAT.codes["CONFLICT_WARNING"].uncoded
    assert set(CAT.codes["CONFLICT_WARNING"].replies) >= {"WILCO", "UNABLE", "STANDBY", "ROGER"}


def _broken(path: tuple[str, ...], value: Any) -> str:
    """The shipped catalogue with one key replaced (None: removed), as TOML text."""
    import json

    doc = raw()
    table = doc
    for part in path[:-1]:
        table = table[part]
    if value is None:
        del table[path[-1]]
    else:
        table[path[-1]] = value
    return json.dumps(doc)


def _load_doc(text: str) -> None:
    import json

    catalogue.from_mapping(json.loads(text))


@pytest.mark.parametrize(
    ("path", "value", "key", "rule"),
    [
        (("codes", "EMERGENCY", "text", "he"), None, "codes.EMERGENCY.text.he", "is required"),
        (
            ("codes", "EMERGENCY", "text", "ar"),
            "طوارئ في {where}",
            "codes.EMERGENCY.text.ar",
            "names field {where}, which the code does not have",
        ),
        (("codes", "READ_BACK"), None, "codes.READ_BACK", "is required"),
        (("codes", "EMERGENCY", "replies"), ["ROGER", "MAYBE"], "codes.EMERGENCY.replies", "'MAYBE'"),
        (("codes", "EMERGENCY", "fields", "aircraft"), "integer", "codes.EMERGENCY.fields.aircraft", "type"),
        (("codes", "EMERGENCY", "delivery_deadline_s"), 0, "codes.EMERGENCY.delivery_deadline_s", "seconds"),
        (("replies", "WILCO", "ru"), None, "replies.WILCO.ru", "is required"),
        (("languages", "he", "direction"), "up", "languages.he.direction", "'ltr' or 'rtl'"),
        (("languages", "ru", "metres"), "{value} {unit}", "languages.ru.metres", "exactly {value}"),
        (("codes", "CHANNEL_CHECK", "text", "en"), "CHECK {", "codes.CHANNEL_CHECK.text.en", "template"),
    ],
)
def test_a_broken_catalogue_is_refused_naming_key_and_rule(
    path: tuple[str, ...], value: Any, key: str, rule: str
) -> None:
    with pytest.raises(CatalogueError) as info:
        _load_doc(_broken(path, value))
    assert info.value.key == key
    assert rule in info.value.rule


FORMS = {
    c.name + (f".{v.variant}" if v.variant else ""): v for c in CAT.codes.values() for v in (c, *c.variants)
}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("code", sorted(FORMS))
def test_every_code_renders_in_every_language(code: str, lang: str) -> None:
    spec = FORMS[code]
    text = render(CAT, spec, fields.check(spec, sample_fields(spec)), lang)
    assert text and "{" not in text and "}" not in text
    rtl = lang in ("he", "ar")
    assert text.startswith(RLI) == rtl
    assert text.endswith(PDI) == (rtl or code == "FREE_TEXT")
    assert text.count(LRI) + text.count(RLI) + text.count(FSI) == text.count(PDI)
    plain = strip_isolates(text)
    assert spec.text[lang].split("{")[0].strip() in plain
    if FieldType.TIME_WINDOW in spec.fields.values():
        assert "2030-06-01T14:00:00Z" in plain and "2030-06-01T15:30:00Z" in plain
    for reply in spec.replies:
        assert strip_isolates(render_reply(CAT, reply, lang)) == CAT.replies[reply][lang]


def test_english_rendering_exactly() -> None:
    spec = CAT.codes["NOTICE_OF_ACTIVITY"]
    text = render(CAT, spec, fields.check(spec, sample_fields(spec)), "en")
    assert text == (
        "NOTICE OF ACTIVITY: unmanned aircraft flight, filing f-1 (volumes: 2). "
        "Area: circle of radius 3000 m centred 35.10000°N 36.05000°E. "
        "Time: 2030-06-01T14:00:00Z to 2030-06-01T15:30:00Z. Altitude: 0 m to 1200.5 m (WGS84)."
    )
    emergency = CAT.codes["EMERGENCY"]
    text = render(CAT, emergency, fields.check(emergency, sample_fields(emergency)), "en-GB")
    assert "at 35.10000°S 36.05000°E, altitude 3000 m, at 2030-06-01T14:05:00Z" in text
    assert text.endswith("Assistance requested: yes.")


def test_rtl_numbers_are_isolated_and_units_follow_the_language() -> None:
    spec = CAT.codes["NOTICE_OF_ACTIVITY"]
    checked = fields.check(spec, sample_fields(spec))
    he = render(CAT, spec, checked, "he")
    assert f"מ-{LRI}0{PDI} מ' עד {LRI}1200.5{PDI} מ' (WGS84)" in he
    ar = render(CAT, spec, checked, "ar")
    assert f"من {LRI}2030-06-01T14:00:00Z{PDI} إلى {LRI}2030-06-01T15:30:00Z{PDI}" in ar
    ru = render(CAT, spec, checked, "ru")
    assert "от 0 м до 1200.5 м (WGS84)" in ru and LRI not in ru


def test_free_text_is_shown_uncoded_and_isolated_in_every_language() -> None:
    spec = CAT.codes["FREE_TEXT"]
    for lang in LANGUAGES:
        text = render(CAT, spec, {"text": "שלום world"}, lang)
        assert f"{FSI}שלום world{PDI}" in text
    assert render(CAT, spec, {"text": "x"}, "en").startswith("UNCODED TEXT")


@pytest.mark.parametrize(
    ("micro", "text"),
    [
        (0, "2026-11-26T10:54:36Z"),
        (47_000, "2026-11-26T10:54:36.047Z"),
        (123_456, "2026-11-26T10:54:36.123456Z"),
        (500_000, "2026-11-26T10:54:36.5Z"),
        (1, "2026-11-26T10:54:36.000001Z"),
    ],
)
def test_instants_show_a_fraction_only_as_long_as_it_is(micro: int, text: str) -> None:
    assert instant(datetime(2026, 11, 26, 10, 54, 36, micro, tzinfo=UTC)) == text


def test_unknown_language_falls_back_to_english() -> None:
    spec = CAT.codes["CHANNEL_CHECK"]
    assert render(CAT, spec, {}, "fr") == render(CAT, spec, {}, "en")
    assert render(CAT, spec, {}, "ar-SY") == render(CAT, spec, {}, "ar")


def test_field_errors_name_the_field_and_rule() -> None:
    spec = CAT.codes["NOTICE_OF_ACTIVITY"]
    bad = sample_fields(spec) | {
        "altitude_band": {"lower_m": 500, "upper_m": 100},
        "time_window": {"start": "2030-06-01T14:00:00+02:00", "end": "2030-06-01T15:00:00Z"},
        "volumes": -1,
        "purpose": "x",
    }
    del bad["filing"]
    with pytest.raises(InvalidInput) as info:
        fields.check(spec, bad)
    found = {e.field: e.rule for e in info.value.errors}
    assert set(found) == {
        "fields.altitude_band.upper_m",
        "fields.time_window.start",
        "fields.volumes",
        "fields.purpose",
        "fields.filing",
    }
    assert "unknown field" in found["fields.purpose"]
    assert found["fields.filing"].startswith("is required")
    with pytest.raises(InvalidInput) as info:
        fields.check(CAT.codes["FREE_TEXT"], {"text": "evil \u202e txt"})
    assert info.value.errors[0].field == "fields.text" and "bidirectional" in info.value.errors[0].rule


def test_area_forms() -> None:
    ring = [[36.0, 35.0], [36.1, 35.0], [36.1, 35.1], [36.0, 35.0]]
    polygon = fields.check_value(FieldType.AREA, {"type": "Polygon", "coordinates": [ring]}, "area")
    assert polygon == {"type": "Polygon", "coordinates": [ring]}
    with pytest.raises(InvalidInput) as info:
        fields.check_value(FieldType.AREA, {"type": "Point", "coordinates": [36.0, 35.0]}, "fields.area")
    assert info.value.errors[0].field == "fields.area.radius_m"
    assert SAMPLE[FieldType.AREA]["radius_m"] == 3000


def test_a_code_s_variant_is_picked_by_its_fields() -> None:
    """CONFLICT_WARNING between two filings, or (its `traffic` form) two tracks: the same
    code and replies, each form checked and rendered with its own fields and texts."""
    code = CAT.codes["CONFLICT_WARNING"]
    (traffic,) = code.variants
    assert traffic.variant == "traffic" and traffic.replies == code.replies and "track_a" in traffic.fields
    assert code.pick(sample_fields(traffic)) is traffic and code.pick(sample_fields(code)) is code
    checked = fields.check(code, sample_fields(traffic))
    assert set(checked) == set(traffic.fields)
    assert strip_isolates(render(CAT, code, checked, "en")).startswith(
        traffic.text["en"].split("{")[0].strip()
    )
    # a mix of the two forms is refused, naming what the nearer form lacks or has too many of
    mixed = {**sample_fields(traffic), "filing": "f-1"}
    with pytest.raises(InvalidInput) as e:
        fields.check(code, mixed)
    assert any(err.field == "fields.filing" and "unknown field" in err.rule for err in e.value.errors)
