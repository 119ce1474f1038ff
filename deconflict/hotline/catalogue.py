"""The message catalogue: codes, their typed fields, replies, deadlines and texts.

:func:`load` reads ``catalogue.toml`` shipped with the package (or another file) and
validates it whole; every error is a :class:`CatalogueError` naming the TOML key and
the rule, e.g. ``codes.EMERGENCY.text.he: names field {where}, which the code does
not have``. Pure: no I/O beyond reading the file.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from deconflict.errors import DeconflictError

__all__ = [
    "FORMAT_PARTS",
    "REQUIRED_CODES",
    "Catalogue",
    "CatalogueError",
    "Code",
    "FieldType",
    "Language",
    "default",
    "load",
    "loads",
    "placeholders",
]


class CatalogueError(DeconflictError):
    """The catalogue broke a rule; `key` names the TOML key."""

    def __init__(self, key: str, rule: str) -> None:
        self.key = key
        self.rule = rule
        super().__init__(f"catalogue: {key}: {rule}")


class FieldType(StrEnum):
    """What a message field holds (its JSON form in :mod:`deconflict.hotline.fields`)."""

    FILING = "filing"  # a filing id
    CONFLICT = "conflict"  # a conflict id
    MESSAGE = "message"  # a hotline message id
    TRACK = "track"  # a track id (the tactical picture's)
    PARTY = "party"  # a party id
    KIND = "kind"  # an activity kind of the agreement
    AREA = "area"  # GeoJSON Polygon, or Point with radius_m (a circle)
    TIME_WINDOW = "time_window"  # {"start", "end"}: RFC 3339 UTC
    ALTITUDE_BAND = "altitude_band"  # {"lower_m", "upper_m"}: metres WGS84
    POSITION = "position"  # [lon, lat]
    ALTITUDE = "altitude"  # metres WGS84
    INSTANT = "instant"  # RFC 3339 UTC
    DISTANCE = "distance"  # metres
    COUNT = "count"  # a whole number >= 0
    FLAG = "flag"  # true or false
    TEXT = "text"  # free text, shown as written (never translated)


#: The codes every catalogue must define.
REQUIRED_CODES = (
    "NOTICE_OF_ACTIVITY",
    "ACTIVITY_ACTIVATED",
    "ACTIVITY_ENDED",
    "CONFLICT_WARNING",
    "IDENTITY_QUERY",
    "EMERGENCY",
    "READ_BACK",
    "CHANNEL_CHECK",
    "FREE_TEXT",
)

#: The value formats of a language and the parts each may name.
FORMAT_PARTS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "metres": frozenset({"value"}),
        "time_window": frozenset({"start", "end"}),
        "altitude_band": frozenset({"lower", "upper"}),
        "circle": frozenset({"radius", "centre"}),
        "polygon": frozenset({"vertices"}),
        "yes": frozenset(),
        "no": frozenset(),
        "none": frozenset(),
    }
)

_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,62}$")
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_MAX_DEADLINE_S = 7 * 86400


@dataclass(frozen=True, slots=True)
class Language:
    tag: str
    name: str
    rtl: bool
    formats: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Code:
    name: str
    fields: Mapping[str, FieldType]
    replies: tuple[str, ...]
    delivery_deadline_s: float
    reply_deadline_s: float | None
    """None when the code allows no reply."""
    text: Mapping[str, str]
    """Template per language tag."""
    uncoded: bool = False
    variants: tuple[Code, ...] = ()
    """Other field sets the same code carries, each with its own texts (and deadlines):
    CONFLICT_WARNING between two filings, or (variant ``traffic``) between two tracks."""
    variant: str | None = None
    """The variant's name; None for the code's main form."""

    def pick(self, fields: Mapping[str, object]) -> Code:
        """The form of this code that `fields` are written in: the one whose field names
        they are exactly, else the one they share most names with (the main form on a tie)."""
        forms = (self, *self.variants)
        keys = set(fields)
        exact = [f for f in forms if set(f.fields) == keys]
        if exact:
            return exact[0]
        return max(forms, key=lambda f: (len(keys & set(f.fields)), f is self))


@dataclass(frozen=True, slots=True)
class Catalogue:
    version: str
    languages: Mapping[str, Language]
    codes: Mapping[str, Code]
    replies: Mapping[str, Mapping[str, str]]
    kinds: Mapping[str, Mapping[str, str]]

    def code(self, name: str) -> Code | None:
        return self.codes.get(name)

    def language(self, tag: str) -> Language:
        """The language for a party's tag: exact, then its primary subtag, then English."""
        if tag in self.languages:
            return self.languages[tag]
        primary = tag.split("-", 1)[0].lower()
        return self.languages.get(primary) or self.languages["en"]


def placeholders(template: str, key: str) -> set[str]:
    """The names a template uses; CatalogueError (naming `key`) if it is malformed."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise CatalogueError(
            key, f"is not a valid template ({exc}); write a literal brace as {{{{ or }}}}"
        ) from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or not _FIELD.match(name) or spec or conversion:
            raise CatalogueError(key, f"placeholder {{{name}}} must be a plain field name like {{area}}")
        names.add(name)
    return names


def _table(doc: Mapping[str, Any], name: str, key: str) -> Mapping[str, Any]:
    value = doc.get(name)
    if not isinstance(value, Mapping):
        raise CatalogueError(key, "is required and must be a table")
    return value


def _only(table: Mapping[str, Any], key: str, allowed: set[str]) -> None:
    for name in table:
        if name not in allowed:
            raise CatalogueError(f"{key}.{name}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _text(table: Mapping[str, Any], name: str, key: str) -> str:
    value = table.get(name)
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(key, "is required and must be a non-empty string")
    return value


def _seconds(table: Mapping[str, Any], name: str, key: str) -> float:
    value = table.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= _MAX_DEADLINE_S:
        raise CatalogueError(key, f"is required and must be a number of seconds in (0, {_MAX_DEADLINE_S}]")
    return float(value)


def _per_language(table: Any, key: str, languages: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(table, Mapping):
        raise CatalogueError(key, "is required and must be a table of one text per language")
    _only(table, key, set(languages))
    return {lang: _text(table, lang, f"{key}.{lang}") for lang in languages}


def _languages(doc: Mapping[str, Any]) -> tuple[str, tuple[str, ...], dict[str, Language]]:
    head = _table(doc, "catalogue", "catalogue")
    _only(head, "catalogue", {"version", "languages"})
    version = _text(head, "version", "catalogue.version")
    tags = head.get("languages")
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        raise CatalogueError("catalogue.languages", "must be a non-empty list of language tags")
    for tag in tags:
        if not _LANG.match(tag):
            raise CatalogueError("catalogue.languages", f"{tag!r} is not a BCP 47 language tag")
    if len(set(tags)) != len(tags):
        raise CatalogueError("catalogue.languages", "lists a language twice")
    if "en" not in tags:
        raise CatalogueError("catalogue.languages", "must include 'en' (the fallback)")
    table = _table(doc, "languages", "languages")
    _only(table, "languages", set(tags))
    languages: dict[str, Language] = {}
    for tag in tags:
        key = f"languages.{tag}"
        lang = _table(table, tag, key)
        _only(lang, key, {"name", "direction", *FORMAT_PARTS})
        direction = lang.get("direction")
        if direction not in ("ltr", "rtl"):
            raise CatalogueError(f"{key}.direction", "must be 'ltr' or 'rtl'")
        formats: dict[str, str] = {}
        for fmt, parts in FORMAT_PARTS.items():
            fkey = f"{key}.{fmt}"
            formats[fmt] = _text(lang, fmt, fkey)
            names = placeholders(formats[fmt], fkey)
            if names != parts:
                want = ", ".join(f"{{{p}}}" for p in sorted(parts)) or "no placeholder"
                raise CatalogueError(fkey, f"must name exactly {want}")
        languages[tag] = Language(tag, _text(lang, "name", f"{key}.name"), direction == "rtl", formats)
    return version, tuple(tags), languages


def _code(
    name: str,
    raw: Any,
    tags: tuple[str, ...],
    replies: Mapping[str, Any],
    *,
    key: str | None = None,
    variant: str | None = None,
) -> Code:
    key = key or f"codes.{name}"
    if not _CODE.match(name):
        raise CatalogueError(key, "code names are A-Z, 0-9 and '_', starting with a letter")
    if not isinstance(raw, Mapping):
        raise CatalogueError(key, "must be a table")
    allowed_keys = {"fields", "replies", "delivery_deadline_s", "reply_deadline_s", "text", "uncoded"}
    _only(raw, key, allowed_keys if variant else allowed_keys | {"variants"})
    raw_fields = raw.get("fields")
    if not isinstance(raw_fields, Mapping):
        raise CatalogueError(f"{key}.fields", "is required and must be a table of name = type")
    fields: dict[str, FieldType] = {}
    types = {t.value for t in FieldType}
    for fname, ftype in raw_fields.items():
        fkey = f"{key}.fields.{fname}"
        if not _FIELD.match(fname):
            raise CatalogueError(fkey, "field names are a-z, 0-9 and '_', starting with a letter")
        if ftype not in types:
            raise CatalogueError(fkey, f"unknown type {ftype!r} (types: {', '.join(sorted(types))})")
        fields[fname] = FieldType(ftype)
    allowed = raw.get("replies")
    if not isinstance(allowed, list) or not all(isinstance(r, str) for r in allowed):
        raise CatalogueError(f"{key}.replies", "is required and must be a list of reply codes (may be empty)")
    for reply in allowed:
        if reply not in replies:
            raise CatalogueError(f"{key}.replies", f"{reply!r} is not defined under [replies]")
    if len(set(allowed)) != len(allowed):
        raise CatalogueError(f"{key}.replies", "lists a reply twice")
    delivery = _seconds(raw, "delivery_deadline_s", f"{key}.delivery_deadline_s")
    reply_deadline: float | None = None
    if allowed:
        reply_deadline = _seconds(raw, "reply_deadline_s", f"{key}.reply_deadline_s")
    elif "reply_deadline_s" in raw:
        raise CatalogueError(f"{key}.reply_deadline_s", "a code that allows no reply has no reply deadline")
    uncoded = raw.get("uncoded", False)
    if not isinstance(uncoded, bool):
        raise CatalogueError(f"{key}.uncoded", "must be true or false")
    text = _per_language(raw.get("text"), f"{key}.text", tags)
    for lang, template in text.items():
        tkey = f"{key}.text.{lang}"
        for used in sorted(placeholders(template, tkey)):
            if used not in fields:
                raise CatalogueError(tkey, f"names field {{{used}}}, which the code does not have")
    variants: list[Code] = []
    raw_variants = raw.get("variants", {})
    if not isinstance(raw_variants, Mapping):
        raise CatalogueError(f"{key}.variants", "must be a table of name = {fields, text, ...}")
    for vname, vraw in raw_variants.items():
        vkey = f"{key}.variants.{vname}"
        if not _FIELD.match(vname):
            raise CatalogueError(vkey, "variant names are a-z, 0-9 and '_', starting with a letter")
        if not isinstance(vraw, Mapping):
            raise CatalogueError(vkey, "must be a table")
        # a variant has the code's replies and, unless it says otherwise, its deadlines
        inherited = {k: raw[k] for k in ("replies", "delivery_deadline_s", "reply_deadline_s") if k in raw}
        if "replies" in vraw:
            raise CatalogueError(f"{vkey}.replies", "a variant has the replies of its code")
        v = _code(name, {**inherited, **vraw}, tags, replies, key=vkey, variant=vname)
        if set(v.fields) == set(fields) or any(set(v.fields) == set(o.fields) for o in variants):
            raise CatalogueError(f"{vkey}.fields", "must differ from the code's and every other variant's")
        variants.append(v)
    return Code(
        name,
        MappingProxyType(fields),
        tuple(allowed),
        delivery,
        reply_deadline,
        MappingProxyType(text),
        uncoded,
        tuple(variants),
        variant,
    )


def from_mapping(doc: Mapping[str, Any]) -> Catalogue:
    _only(doc, "", {"catalogue", "languages", "kinds", "replies", "codes"})
    version, tags, languages = _languages(doc)
    raw_replies = _table(doc, "replies", "replies")
    replies: dict[str, Mapping[str, str]] = {}
    for name, texts in raw_replies.items():
        if not _CODE.match(name):
            raise CatalogueError(f"replies.{name}", "reply codes are A-Z, 0-9 and '_'")
        replies[name] = MappingProxyType(_per_language(texts, f"replies.{name}", tags))
    kinds = {
        name: MappingProxyType(_per_language(texts, f"kinds.{name}", tags))
        for name, texts in _table(doc, "kinds", "kinds").items()
    }
    raw_codes = _table(doc, "codes", "codes")
    codes = {name: _code(name, raw, tags, replies) for name, raw in raw_codes.items()}
    for required in REQUIRED_CODES:
        if required not in codes:
            raise CatalogueError(f"codes.{required}", "is required")
    return Catalogue(
        version,
        MappingProxyType(languages),
        MappingProxyType(codes),
        MappingProxyType(replies),
        MappingProxyType(kinds),
    )


def loads(text: str) -> Catalogue:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError("(file)", f"is not valid TOML: {exc}") from None
    return from_mapping(doc)


def load(path: str | Path | None = None) -> Catalogue:
    """Load and validate a catalogue; None loads the one shipped with the package."""
    if path is None:
        return default()
    return loads(Path(path).read_text("utf-8"))


@cache
def default() -> Catalogue:
    """The catalogue shipped with the package (read once)."""
    return loads(resources.files(__package__).joinpath("catalogue.toml").read_text("utf-8"))
