"""Rendering a coded message in a party's language, from the catalogue alone.

Values are written so no reader can misread them: ASCII digits with a '.' decimal
point and no thousands separator, metres, ISO 8601 UTC times with a ``Z``, positions
as decimal degrees with N/S and E/W (latitude first, 5 decimals: about a metre).

Right-to-left languages (Hebrew, Arabic): the whole message is wrapped in RIGHT-TO-LEFT
ISOLATE … POP DIRECTIONAL ISOLATE (U+2067 … U+2069), so that on a left-to-right page or
terminal that implements the Unicode bidirectional algorithm it reads as one
right-to-left paragraph without disturbing the text around it; inside it, every
left-to-right atom (numbers, times, positions, ids) sits in LEFT-TO-RIGHT ISOLATE …
PDI (U+2066 … U+2069), so that "0–120" or a time never comes out reversed, while the
unit words around it follow the language's own order. Free text, in any script, sits
in FIRST STRONG ISOLATE … PDI (U+2068 … U+2069) in every language. A terminal without
bidi support shows the characters in logical order; :func:`strip_isolates` removes the
marks for plain-text uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from deconflict.hotline.catalogue import Catalogue, Code, FieldType, Language
from deconflict.hotline.fields import area_outline
from deconflict.ledger.canonical import JSONValue
from deconflict.model.geojson import parse_time
from deconflict.model.volume import Circle

__all__ = ["FSI", "LRI", "PDI", "RLI", "render", "render_reply", "strip_isolates"]

LRI = "\u2066"
RLI = "\u2067"
FSI = "\u2068"
PDI = "\u2069"
_ISOLATES = str.maketrans("", "", LRI + RLI + FSI + PDI)


def strip_isolates(text: str) -> str:
    return text.translate(_ISOLATES)


def number(value: float) -> str:
    """At most one decimal, none when whole: 9260, 152.4, -12."""
    text = f"{value:.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text


def instant(value: datetime) -> str:
    """ISO 8601 UTC, seconds always, a fraction only when there is one, without its
    trailing zeros (an operator reads 10:54:36.047Z, not 10:54:36.047000Z)."""
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{value.microsecond:06d}".rstrip("0") + "Z" if value.microsecond else f"{base}Z"


def position(lon: float, lat: float) -> str:
    return f"{abs(lat):.5f}°{'N' if lat >= 0 else 'S'} {abs(lon):.5f}°{'E' if lon >= 0 else 'W'}"


class _Writer:
    def __init__(self, catalogue: Catalogue, language: Language) -> None:
        self.catalogue = catalogue
        self.lang = language

    def atom(self, text: str) -> str:
        """A left-to-right piece (digits, ids, times): isolated in a right-to-left text."""
        return f"{LRI}{text}{PDI}" if self.lang.rtl else text

    def fmt(self, name: str, **parts: str) -> str:
        return self.lang.formats[name].format(**parts)

    def metres(self, value: float) -> str:
        return self.fmt("metres", value=self.atom(number(value)))

    def time(self, value: JSONValue) -> str:
        return self.atom(instant(parse_time(value, "time")))

    def value(self, ftype: FieldType, value: JSONValue) -> str:
        if value is None:
            return self.fmt("none")
        match ftype:
            case FieldType.KIND:
                names = self.catalogue.kinds.get(str(value))
                return names[self.lang.tag] if names else self.atom(str(value))
            case FieldType.TEXT:
                return f"{FSI}{value}{PDI}"
            case FieldType.FLAG:
                return self.fmt("yes" if value else "no")
            case FieldType.COUNT:
                return self.atom(str(value))
            case FieldType.DISTANCE | FieldType.ALTITUDE:
                assert isinstance(value, int | float)
                return self.metres(float(value))
            case FieldType.INSTANT:
                return self.time(value)
            case FieldType.POSITION:
                assert isinstance(value, list)
                lon, lat = value
                assert isinstance(lon, int | float) and isinstance(lat, int | float)
                return self.atom(position(float(lon), float(lat)))
            case FieldType.TIME_WINDOW:
                assert isinstance(value, Mapping)
                return self.fmt("time_window", start=self.time(value["start"]), end=self.time(value["end"]))
            case FieldType.ALTITUDE_BAND:
                assert isinstance(value, Mapping)
                lower, upper = value["lower_m"], value["upper_m"]
                assert isinstance(lower, int | float) and isinstance(upper, int | float)
                return self.fmt("altitude_band", lower=self.metres(lower), upper=self.metres(upper))
            case FieldType.AREA:
                outline = area_outline(value)
                if isinstance(outline, Circle):
                    return self.fmt(
                        "circle",
                        radius=self.metres(outline.radius_m),
                        centre=self.atom(position(outline.lon, outline.lat)),
                    )
                vertices = "; ".join(position(lon, lat) for lon, lat in outline.ring)
                return self.fmt("polygon", vertices=self.atom(vertices))
            case _:  # ids: filing, conflict, message, track, party
                return self.atom(str(value))


def render(catalogue: Catalogue, code: Code, fields: Mapping[str, JSONValue], language: str) -> str:
    """The text of a message with these (checked) fields, in `language` (a party's
    BCP 47 tag: falls back to its primary subtag, then English)."""
    lang = catalogue.language(language)
    writer = _Writer(catalogue, lang)
    code = code.pick(fields)
    parts = {name: writer.value(ftype, fields.get(name)) for name, ftype in code.fields.items()}
    text = code.text[lang.tag].format(**parts)
    return f"{RLI}{text}{PDI}" if lang.rtl else text


def render_reply(catalogue: Catalogue, reply: str, language: str) -> str:
    lang = catalogue.language(language)
    text = catalogue.replies[reply][lang.tag]
    return f"{RLI}{text}{PDI}" if lang.rtl else text
