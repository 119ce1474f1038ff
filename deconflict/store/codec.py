"""Compact JSON documents for what the store keeps whole: filings and findings.

Times are integer microseconds since the Unix epoch (UTC), so a round trip is
exact; floats are written by orjson in their shortest exact form. Each document
carries a format number `f` so a later format can still read older rows. Decoding
goes through the model constructors, so a document that breaks a model rule is
refused rather than half-loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from deconflict.model import (
    Circle,
    Filing,
    FilingRef,
    FilingType,
    Finding,
    Outline,
    Polygon,
    Separation,
    State,
    Volume4D,
)

__all__ = [
    "FORMAT",
    "decode_filing",
    "decode_finding",
    "decode_volumes",
    "encode_filing",
    "encode_finding",
    "encode_volumes",
    "from_us",
    "to_us",
]

FORMAT = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_us(t: datetime) -> int:
    """A timezone-aware datetime as integer microseconds since the epoch (exact)."""
    if t.tzinfo is None:
        raise ValueError("naive datetime: times must be timezone-aware UTC")
    return (t - EPOCH) // _US


def from_us(us: int) -> datetime:
    """Integer microseconds since the epoch as a UTC datetime."""
    return EPOCH + timedelta(microseconds=us)


def encode_filing(filing: Filing) -> bytes:
    return orjson.dumps(
        {
            "f": FORMAT,
            "id": filing.id,
            "type": filing.type.value,
            "owner": filing.owner,
            "kind": filing.kind,
            "state": filing.state.value,
            "prio": filing.priority,
            "v": filing.version,
            "ovn": filing.ovn,
            "created": to_us(filing.created_at),
            "updated": to_us(filing.updated_at),
            "notice_s": filing.notice_s,
            "late": filing.late,
            "vols": [_encode_volume(v) for v in filing.volumes],
        }
    )


def decode_filing(doc: bytes | str) -> Filing:
    d = _load(doc)
    return Filing(
        id=d["id"],
        type=FilingType(d["type"]),
        owner=d["owner"],
        kind=d["kind"],
        volumes=tuple(_decode_volume(v) for v in d["vols"]),
        state=State(d["state"]),
        priority=d["prio"],
        version=d["v"],
        ovn=d["ovn"],
        created_at=from_us(d["created"]),
        updated_at=from_us(d["updated"]),
        notice_s=d["notice_s"],
        late=d["late"],
    )


def encode_finding(finding: Finding) -> bytes:
    sep = finding.separation
    return orjson.dumps(
        {
            "f": FORMAT,
            "a": _encode_ref(finding.a),
            "b": _encode_ref(finding.b),
            "start": to_us(finding.time_start),
            "end": to_us(finding.time_end),
            "h_m": finding.horizontal_separation_m,
            "v_m": finding.vertical_separation_m,
            "t_s": finding.time_separation_s,
            "sep": [sep.horizontal_m, sep.vertical_m, sep.time_s],
        }
    )


def decode_finding(doc: bytes | str) -> Finding:
    d = _load(doc)
    h, v, t = d["sep"]
    return Finding(
        a=_decode_ref(d["a"]),
        b=_decode_ref(d["b"]),
        time_start=from_us(d["start"]),
        time_end=from_us(d["end"]),
        horizontal_separation_m=d["h_m"],
        vertical_separation_m=d["v_m"],
        time_separation_s=d["t_s"],
        separation=Separation(h, v, t),
    )


def encode_volumes(volumes: Sequence[Volume4D]) -> bytes:
    """Volumes alone (a subscription's area), in the filing document's form."""
    return orjson.dumps({"f": FORMAT, "vols": [_encode_volume(v) for v in volumes]})


def decode_volumes(doc: bytes | str) -> tuple[Volume4D, ...]:
    return tuple(_decode_volume(v) for v in _load(doc)["vols"])


def _load(doc: bytes | str) -> dict[str, Any]:
    d = orjson.loads(doc)
    if not isinstance(d, dict) or d.get("f") != FORMAT:
        raise ValueError(f"not a format-{FORMAT} document")
    return d


def _encode_volume(v: Volume4D) -> list[Any]:
    return [
        _encode_outline(v.outline),
        v.altitude_lower_m,
        v.altitude_upper_m,
        to_us(v.time_start),
        to_us(v.time_end),
    ]


def _decode_volume(raw: list[Any]) -> Volume4D:
    outline, lo, hi, start, end = raw
    # written by `_encode_volume` from a checked volume: not checked again
    return Volume4D.stored(_decode_outline(outline), lo, hi, from_us(start), from_us(end))


def _encode_outline(o: Outline) -> dict[str, Any]:
    if isinstance(o, Circle):
        return {"c": [o.lon, o.lat, o.radius_m]}
    return {"p": [[lon, lat] for lon, lat in o.ring]}


def _decode_outline(raw: dict[str, Any]) -> Outline:
    if "c" in raw:
        lon, lat, r = raw["c"]
        return Circle.stored(lon, lat, r)
    return Polygon.stored(tuple((lon, lat) for lon, lat in raw["p"]))


def _encode_ref(r: FilingRef) -> list[Any]:
    return [r.id, r.type.value, r.owner, r.kind, r.version, r.ovn]


def _decode_ref(raw: list[Any]) -> FilingRef:
    fid, ftype, owner, kind, version, ovn = raw
    return FilingRef(fid, FilingType(ftype), owner, kind, version, ovn)
