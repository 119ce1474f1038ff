"""The wire format: request models (pydantic, strict, unknown fields refused) and
response renderings. Domain code never imports this module."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from fastapi import Query, Response
from pydantic import BaseModel, ConfigDict, Field

from deconflict.errors import FieldError, InvalidInput
from deconflict.model import Conflict, Filing, Party, Volume4D
from deconflict.model.agreement import ID_PATTERN as _PARTY_ID
from deconflict.model.geojson import format_time, volume_from_feature, volume_to_feature
from deconflict.model.signature import PartyKey
from deconflict.service.ledger import Receipt

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
PARTY_PATTERN = _PARTY_ID  # a party id, as the registry checks it


#: a query parameter naming a party (optional), spelled as the registry spells ids
PartyFilter = Annotated[str | None, Query(max_length=63, pattern=PARTY_PATTERN)]

Cursor = Annotated[
    str | None,
    Query(
        max_length=128,
        pattern=ID_PATTERN,
        description="where a page starts: the id of the item the last page ended with",
    ),
]


def next_link(path: str, query: Mapping[str, str], cursor: str, value: str) -> str:
    """An RFC 8288 `Link` header naming the next page: the same query, `cursor` set to
    `value` (the id the page ended with)."""
    return f'<{path}?{urlencode({**query, cursor: value})}>; rel="next"'


def plain(value: Any) -> Any:
    """Datetimes to RFC 3339 Z strings, enums to values, recursively (what `dumps`
    writes, as plain values: the CLI's output, and the reference `dumps` is tested against)."""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """The API's JSON bytes of `value`: `orjson.dumps(plain(value))` in one pass. orjson
    writes enums (as their values), tuples, dataclasses and the rest itself, and hands
    datetimes back for `format_time` (RFC 3339 with a Z)."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


class JSON(Response):
    """The API's JSON answers, written by `dumps`."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Position = Annotated[list[float], Field(min_length=2, max_length=2)]


class PolygonGeometry(_Strict):
    type: Literal["Polygon"]
    coordinates: Annotated[list[Annotated[list[Position], Field(max_length=10_000)]], Field(min_length=1)]
    bbox: list[float] | None = None


class PointGeometry(_Strict):
    type: Literal["Point"]
    coordinates: Position
    bbox: list[float] | None = None


class VolumeProperties(_Strict):
    altitude_lower_m: float = Field(description="metres above the WGS84 ellipsoid")
    altitude_upper_m: float = Field(description="metres above the WGS84 ellipsoid")
    time_start: str = Field(description="RFC 3339, UTC", examples=["2026-11-26T12:00:00Z"])
    time_end: str = Field(description="RFC 3339, UTC", examples=["2026-11-26T13:00:00Z"])
    radius_m: float | None = Field(default=None, description="circle radius, with a Point geometry")


class VolumeFeature(_Strict):
    """A Volume4D as a GeoJSON Feature: Polygon, or Point with `radius_m` (a circle)."""

    type: Literal["Feature"]
    geometry: Annotated[PolygonGeometry | PointGeometry, Field(discriminator="type")]
    properties: VolumeProperties
    id: str | int | None = None
    bbox: list[float] | None = None

    def to_volume(self, index: int | None = None) -> Volume4D:
        doc = self.model_dump(exclude_none=True)
        try:
            return volume_from_feature(doc)[0]
        except InvalidInput as exc:
            raise exc.prefixed("" if index is None else f"volumes[{index}]") from None


Volumes = Annotated[list[VolumeFeature], Field(min_length=1, max_length=1000)]
Key = Annotated[list[Annotated[str, Field(max_length=128)]], Field(max_length=10_000)]


def volumes_of(features: list[VolumeFeature]) -> tuple[Volume4D, ...]:
    out: list[Volume4D] = []
    errors: list[FieldError] = []
    for i, f in enumerate(features):
        try:
            out.append(f.to_volume(i))
        except InvalidInput as exc:
            errors += exc.errors
    if errors:
        raise InvalidInput(errors)
    return tuple(out)


class IntentCreate(_Strict):
    kind: str = Field(max_length=64, examples=["uas_flight"])
    volumes: Volumes
    state: Literal["accepted", "activated"] = "accepted"
    key: Key = Field(
        default_factory=list, description="ovns of the conflicting versions the submitter has seen"
    )


class IntentUpdate(_Strict):
    ovn: str = Field(max_length=128, description="the current version token")
    kind: str = Field(max_length=64)
    volumes: Volumes
    state: Literal["accepted", "activated", "nonconforming", "contingent"] = "accepted"
    key: Key = Field(default_factory=list)


class ConstraintCreate(_Strict):
    kind: str = Field(default="reservation", max_length=64)
    volumes: Volumes
    key: Key = Field(default_factory=list)


class ConstraintUpdate(_Strict):
    ovn: str = Field(max_length=128)
    kind: str = Field(default="reservation", max_length=64)
    volumes: Volumes
    key: Key = Field(default_factory=list)


class StateChange(_Strict):
    ovn: str = Field(max_length=128)
    state: Literal["activated", "nonconforming", "contingent", "ended"]


class AreaQuery(_Strict):
    area: VolumeFeature


class PartyCreate(_Strict):
    id: str = Field(max_length=63)
    role: Literal["operator", "observer", "admin"] = "operator"
    name: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, max_length=35)


class KeyCreate(_Strict):
    public_key: str = Field(
        max_length=4096,
        description="Ed25519 public key: base64 of its 32 bytes, or PEM (SubjectPublicKeyInfo)",
    )
    required: bool = Field(default=False, description="from now on, every write of the party must be signed")


# -- responses ----------------------------------------------------------------


def filing_view(filing: Filing, viewer: Party) -> dict[str, Any]:
    """Another party sees volumes, times, kind, state and owner (and the version
    token, which it needs for its key); the owner sees everything."""
    view: dict[str, Any] = {
        "id": filing.id,
        "type": filing.type.value,
        "owner": filing.owner,
        "kind": filing.kind,
        "state": filing.state.value,
        "version": filing.version,
        "ovn": filing.ovn,
        "volumes": [volume_to_feature(v) for v in filing.volumes],
    }
    if viewer.id == filing.owner:
        view.update(
            priority=filing.priority,
            notice_s=filing.notice_s,
            late=filing.late,
            created_at=format_time(filing.created_at),
            updated_at=format_time(filing.updated_at),
        )
    return view


def conflict_view(conflict: Conflict) -> dict[str, Any]:
    return {
        "id": conflict.id,
        "state": conflict.state.value,
        "detected_at": format_time(conflict.detected_at),
        "closed_at": format_time(conflict.closed_at) if conflict.closed_at else None,
        **conflict.finding.as_dict(),
    }


def party_view(party: Party) -> dict[str, Any]:
    return {
        "id": party.id,
        "name": party.name,
        "language": party.language,
        "role": party.role.value,
        "created_at": format_time(party.created_at),
    }


def key_view(key: PartyKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "party": key.party_id,
        "algorithm": "ed25519",
        "public_key": key.public_b64,
        "required": key.required,
        "added_at": format_time(key.added_at),
        "revoked_at": format_time(key.revoked_at) if key.revoked_at else None,
    }


def receipt_view(receipt: Receipt) -> dict[str, Any]:
    """Where an accepted write sits in the log; prove it with GET /v1/log/proof/inclusion."""
    return {"leaf_index": receipt.leaf_index, "entry_hash": receipt.entry_hash.hex()}
