"""The hotline's pure rules: which replies a code allows, how a read-back compares
with the message it repeats, and when deliveries and replies fall due."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from deconflict.errors import InvalidInput
from deconflict.hotline.catalogue import Code
from deconflict.hotline.fields import area_outline
from deconflict.ledger.canonical import JSONValue
from deconflict.model.agreement import Deadlines
from deconflict.model.geojson import parse_time
from deconflict.model.volume import Circle

__all__ = [
    "READ_BACK_FIELDS",
    "Mismatch",
    "check_reply",
    "compare_read_back",
    "deadlines",
    "due",
]

#: What a read-back repeats (each, when the original message has it).
READ_BACK_FIELDS = ("area", "time_window", "altitude_band")
#: Tolerances of a read-back: positions to 1e-5 degree (about a metre), lengths to
#: half a metre, times to the second; anything further apart is a mismatch.
DEGREES_TOLERANCE = 1e-5
METRES_TOLERANCE = 0.5
SECONDS_TOLERANCE = 1.0


def check_reply(code: Code, reply: str) -> None:
    """InvalidInput naming `reply` unless `code` allows it."""
    if not code.replies:
        raise InvalidInput.one("reply", f"{code.name} takes no reply")
    if reply not in code.replies:
        raise InvalidInput.one("reply", f"must be one of {', '.join(code.replies)} for {code.name}")


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One difference between a read-back and its original: `field` is a path such as
    ``altitude_band.upper_m``."""

    field: str
    original: JSONValue
    read_back: JSONValue

    def as_dict(self) -> dict[str, JSONValue]:
        return {"field": self.field, "original": self.original, "read_back": self.read_back}


def _num(value: JSONValue) -> float:
    assert isinstance(value, int | float) and not isinstance(value, bool)
    return float(value)


def _area(original: JSONValue, read_back: JSONValue) -> list[Mismatch]:
    a, b = area_outline(original), area_outline(read_back)
    if isinstance(a, Circle) and isinstance(b, Circle):
        out = []
        if abs(a.lon - b.lon) > DEGREES_TOLERANCE or abs(a.lat - b.lat) > DEGREES_TOLERANCE:
            out.append(Mismatch("area.coordinates", [a.lon, a.lat], [b.lon, b.lat]))
        if abs(a.radius_m - b.radius_m) > METRES_TOLERANCE:
            out.append(Mismatch("area.radius_m", a.radius_m, b.radius_m))
        return out
    if isinstance(a, Circle) or isinstance(b, Circle):
        return [
            Mismatch(
                "area.type",
                "Point" if isinstance(a, Circle) else "Polygon",
                "Point" if isinstance(b, Circle) else "Polygon",
            )
        ]
    same = len(a.ring) == len(b.ring) and all(
        abs(p[0] - q[0]) <= DEGREES_TOLERANCE and abs(p[1] - q[1]) <= DEGREES_TOLERANCE
        for p, q in zip(a.ring, b.ring, strict=True)
    )
    return [] if same else [Mismatch("area.coordinates", original, read_back)]


def _window(original: Mapping[str, JSONValue], read_back: Mapping[str, JSONValue]) -> list[Mismatch]:
    out = []
    for part in ("start", "end"):
        a, b = parse_time(original[part], part), parse_time(read_back[part], part)
        if abs((a - b).total_seconds()) > SECONDS_TOLERANCE:
            out.append(Mismatch(f"time_window.{part}", original[part], read_back[part]))
    return out


def _band(original: Mapping[str, JSONValue], read_back: Mapping[str, JSONValue]) -> list[Mismatch]:
    return [
        Mismatch(f"altitude_band.{part}", original[part], read_back[part])
        for part in ("lower_m", "upper_m")
        if abs(_num(original[part]) - _num(read_back[part])) > METRES_TOLERANCE
    ]


def compare_read_back(
    original: Mapping[str, JSONValue], read_back: Mapping[str, JSONValue]
) -> list[Mismatch]:
    """Every difference between a read-back's area, time window and altitude band and
    the original's (both in normal form); fields the original lacks are not compared.
    InvalidInput names ``fields.message`` when the original has none of them."""
    compared = [f for f in READ_BACK_FIELDS if f in original]
    if not compared:
        raise InvalidInput.one(
            "fields.message", "the message read back has no area, time window or altitude band to repeat"
        )
    out: list[Mismatch] = []
    for name in compared:
        a, b = original[name], read_back[name]
        if name == "area":
            out += _area(a, b)
        elif name == "time_window":
            assert isinstance(a, Mapping) and isinstance(b, Mapping)
            out += _window(a, b)
        else:
            assert isinstance(a, Mapping) and isinstance(b, Mapping)
            out += _band(a, b)
    return out


def deadlines(code: Code, overrides: Mapping[str, Deadlines] | None = None) -> Deadlines:
    """A code's deadlines: the agreement's override where it has one, else the
    catalogue's default. A code without replies has no reply deadline."""
    chosen = (overrides or {}).get(code.name)  # one override holds for every variant of the code
    if chosen is None:
        return Deadlines(code.delivery_deadline_s, code.reply_deadline_s)
    return Deadlines(chosen.delivery_s, chosen.reply_s if code.replies else None)


def due(at: datetime, seconds: float | None) -> datetime | None:
    return None if seconds is None else at + timedelta(seconds=seconds)
