"""F3548-21 wire types, written from InterUSS's `utm.yaml` (the F3548-21 OpenAPI
definition, version 1.0.0), as pydantic models FastAPI validates at the edge, and
the renderings of domain objects into them.

As the definition says: fields a message holds but the API does not declare are
ignored; an optional object may also be null. Altitudes are metres above the WGS84
ellipsoid (`W84`, `M`), times RFC 3339 with `Z`. Domain code never imports this.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deconflict.errors import FieldError, InvalidInput
from deconflict.model import Circle, Filing, FilingType, Polygon, State, Volume4D
from deconflict.model.dss import NULL_SUBSCRIPTION_ID, PartyAvailability, Subscriber, Subscription
from deconflict.model.geojson import format_time, parse_time
from deconflict.model.volume import MAX_ALTITUDE_M, MIN_ALTITUDE_M
from deconflict.service.availability import version_text
from deconflict.service.dss import ImplicitSubscription, Referenced, ReferenceDraft

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
#: How far ahead a query without an end time looks (F3548 CstrMaxPlanningHorizonDays).
QUERY_HORIZON = timedelta(days=56)
#: Most vertices of one polygon (F3548 OiMaxVertices).
MAX_VERTICES = 10_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class Time(_Model):
    value: str = Field(max_length=64, description="RFC 3339; the time zone must be 'Z'")
    format: Literal["RFC3339"]


class Altitude(_Model):
    value: float = Field(ge=-8000, le=100000)
    reference: Literal["W84"]
    units: Literal["M"]


class LatLngPoint(_Model):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)


class Radius(_Model):
    value: float = Field(gt=0)
    units: Literal["M"]


class CircleWire(_Model):
    center: LatLngPoint | None = None
    radius: Radius | None = None


class PolygonWire(_Model):
    vertices: Annotated[list[LatLngPoint], Field(min_length=3, max_length=MAX_VERTICES)]


class Volume3D(_Model):
    outline_circle: CircleWire | None = None
    outline_polygon: PolygonWire | None = None
    altitude_lower: Altitude | None = None
    altitude_upper: Altitude | None = None


class Volume4DWire(_Model):
    volume: Volume3D
    time_start: Time | None = None
    time_end: Time | None = None


Extents = Annotated[list[Volume4DWire], Field(min_length=1, max_length=1000)]
EntityOVN = Annotated[str, Field(min_length=16, max_length=128)]
Key = Annotated[list[EntityOVN], Field(max_length=10_000)]
OIState = Literal["Accepted", "Activated", "Nonconforming", "Contingent"]
UssBaseURL = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://[^\s]*[^/\s]$")]


class ImplicitSubscriptionParameters(_Model):
    uss_base_url: UssBaseURL
    notify_for_constraints: bool = False


class PutOperationalIntentReferenceParameters(_Model):
    extents: Extents
    key: Key | None = None
    state: OIState
    uss_base_url: UssBaseURL
    subscription_id: Annotated[str, Field(pattern=UUID_PATTERN)] | None = None
    new_subscription: ImplicitSubscriptionParameters | None = None


class PutConstraintReferenceParameters(_Model):
    extents: Extents
    uss_base_url: UssBaseURL


class QueryParameters(_Model):
    """Query*Parameters: an optional area of interest (required here in fact)."""

    area_of_interest: Volume4DWire | None = None


class PutSubscriptionParameters(_Model):
    extents: Volume4DWire
    uss_base_url: UssBaseURL
    notify_for_operational_intents: bool = False
    notify_for_constraints: bool = False


class SetUssAvailabilityStatusParameters(_Model):
    old_version: Annotated[str, Field(max_length=64)] = ""
    availability: Literal["Unknown", "Normal", "Down"]


# -- to the domain --------------------------------------------------------------


def _outline(v: Volume3D, where: str) -> Circle | Polygon:
    if (v.outline_circle is None) == (v.outline_polygon is None):
        raise InvalidInput.one(
            f"{where}.volume", "exactly one of outline_circle and outline_polygon is needed"
        )
    if v.outline_circle is not None:
        c = v.outline_circle
        if c.center is None or c.radius is None:
            raise InvalidInput.one(f"{where}.volume.outline_circle", "needs center and radius")
        try:
            return Circle(c.center.lng, c.center.lat, c.radius.value)
        except InvalidInput as exc:
            raise exc.prefixed(f"{where}.volume.outline_circle") from None
    assert v.outline_polygon is not None
    ring = tuple((p.lng, p.lat) for p in v.outline_polygon.vertices)
    if len(ring) > 3 and ring[0] == ring[-1]:
        ring = ring[:-1]  # tolerate a closed ring, though F3548 says not to close it
    try:
        return Polygon(ring)
    except InvalidInput as exc:
        raise exc.prefixed(f"{where}.volume.outline_polygon") from None


def to_volume(w: Volume4DWire, where: str, *, now: datetime | None = None) -> Volume4D:
    """One F3548 Volume4D. With `now` (an area of interest or a subscription), missing
    altitudes default to every altitude and missing times to [now, now + horizon];
    without it (an intent's or constraint's extents) each is required."""
    errors: list[FieldError] = []
    outline: Circle | Polygon | None = None
    try:
        outline = _outline(w.volume, where)
    except InvalidInput as exc:
        errors += exc.errors
    alts: list[float] = []
    for name, alt, default in (
        ("altitude_lower", w.volume.altitude_lower, MIN_ALTITUDE_M),
        ("altitude_upper", w.volume.altitude_upper, MAX_ALTITUDE_M),
    ):
        if alt is None:
            if now is None:
                errors.append(FieldError(f"{where}.volume.{name}", "is required"))
            alts.append(default)
        else:
            alts.append(alt.value)
    times: list[datetime] = []
    for name, t, fallback in (
        ("time_start", w.time_start, now),
        ("time_end", w.time_end, None if now is None else now + QUERY_HORIZON),
    ):
        if t is None:
            if fallback is None:
                errors.append(FieldError(f"{where}.{name}", "is required"))
                continue
            times.append(fallback)
            continue
        try:
            times.append(parse_time(t.value, f"{where}.{name}.value"))
        except InvalidInput as exc:
            errors += exc.errors
    if errors:
        raise InvalidInput(errors)
    assert outline is not None
    try:
        return Volume4D(outline, alts[0], alts[1], times[0], times[1])
    except InvalidInput as exc:
        renamed = {
            "altitude_lower_m": "volume.altitude_lower",
            "altitude_upper_m": "volume.altitude_upper",
        }
        raise InvalidInput(
            [FieldError(f"{where}.{renamed.get(e.field, e.field)}", e.rule) for e in exc.errors]
        ) from None


def to_volumes(extents: list[Volume4DWire]) -> tuple[Volume4D, ...]:
    out: list[Volume4D] = []
    errors: list[FieldError] = []
    for i, w in enumerate(extents):
        try:
            out.append(to_volume(w, f"extents[{i}]"))
        except InvalidInput as exc:
            errors += exc.errors
    if errors:
        raise InvalidInput(errors)
    return tuple(out)


def intent_draft(body: PutOperationalIntentReferenceParameters) -> ReferenceDraft:
    new = body.new_subscription
    return ReferenceDraft(
        volumes=to_volumes(body.extents),
        uss_base_url=body.uss_base_url,
        state=State(body.state.lower()),
        key=tuple(body.key or ()),
        subscription_id=body.subscription_id,
        new_subscription=None
        if new is None
        else ImplicitSubscription(new.uss_base_url, new.notify_for_constraints),
    )


def constraint_draft(body: PutConstraintReferenceParameters) -> ReferenceDraft:
    return ReferenceDraft(volumes=to_volumes(body.extents), uss_base_url=body.uss_base_url)


# -- from the domain ------------------------------------------------------------


def time(t: datetime) -> dict[str, str]:
    return {"value": format_time(t), "format": "RFC3339"}


def altitude(value_m: float) -> dict[str, Any]:
    return {"value": value_m, "reference": "W84", "units": "M"}


def volume(v: Volume4D) -> dict[str, Any]:
    o = v.outline
    outline: dict[str, Any]
    if isinstance(o, Circle):
        outline = {
            "outline_circle": {
                "center": {"lng": o.lon, "lat": o.lat},
                "radius": {"value": o.radius_m, "units": "M"},
            }
        }
    else:
        outline = {"outline_polygon": {"vertices": [{"lng": x, "lat": y} for x, y in o.ring]}}
    return {
        "volume": {
            **outline,
            "altitude_lower": altitude(v.altitude_lower_m),
            "altitude_upper": altitude(v.altitude_upper_m),
        },
        "time_start": time(v.time_start),
        "time_end": time(v.time_end),
    }


_STATES = {
    State.ACCEPTED: "Accepted",
    State.ACTIVATED: "Activated",
    State.NONCONFORMING: "Nonconforming",
    State.CONTINGENT: "Contingent",
}


def reference(
    ref: Referenced,
    viewer_id: str | None,
    native_base_url: str,
    *,
    as_of: Filing | None = None,
    show_ovn: bool = False,
) -> dict[str, Any]:
    """An OperationalIntentReference or ConstraintReference. `as_of` renders an earlier
    version's state (a deletion answers with the reference as it stood); the OVN goes to
    the manager only, unless `show_ovn` (the missing entries of a 409, which deconflict
    names so that a client can build its key without a USS to ask)."""
    f = ref.filing
    state_of = as_of if as_of is not None and f.state is State.ENDED else f
    out: dict[str, Any] = {
        "id": f.id,
        "manager": f.owner,
        "uss_availability": ref.availability.availability.value,
        "version": f.version,
        "time_start": time(f.time_start),
        "time_end": time(f.time_end),
        "uss_base_url": ref.reference.uss_base_url if ref.reference else native_base_url,
    }
    if f.owner == viewer_id or show_ovn:
        out["ovn"] = f.ovn
    if f.type is FilingType.INTENT:
        out["state"] = _STATES.get(state_of.state, "Accepted")
        out["subscription_id"] = ref.reference.subscription_id if ref.reference else NULL_SUBSCRIPTION_ID
    return out


def subscribers(found: tuple[Subscriber, ...]) -> list[dict[str, Any]]:
    return [
        {
            "uss_base_url": s.uss_base_url,
            "subscriptions": [
                {"subscription_id": sid, "notification_index": n} for sid, n in s.subscriptions
            ],
        }
        for s in found
    ]


def subscription(sub: Subscription, dependents: list[str]) -> dict[str, Any]:
    return {
        "id": sub.id,
        "version": str(sub.version),
        "notification_index": sub.notification_index,
        "time_start": time(sub.time_start),
        "time_end": time(sub.time_end),
        "uss_base_url": sub.uss_base_url,
        "notify_for_operational_intents": sub.notify_for_intents,
        "notify_for_constraints": sub.notify_for_constraints,
        "implicit_subscription": sub.implicit,
        "dependent_operational_intents": dependents,
    }


def availability(uss_id: str, a: PartyAvailability) -> dict[str, Any]:
    return {
        "status": {"uss": uss_id, "availability": a.availability.value},
        "version": version_text(a.version),
    }
