"""The offline check (`deconflict check FILE`): every cross-party conflict in one
GeoJSON FeatureCollection of filings, without a server.

Each Feature is one volume filed by one party: `id`; properties `party`, `kind`,
`altitude_lower_m`, `altitude_upper_m`, `time_start`, `time_end` (RFC 3339, UTC);
geometry a Polygon, or a Point with the property `radius_m`. Errors name the field
as ``features[i].<path>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from deconflict.detect.strategic import all_conflicts
from deconflict.errors import FieldError, InvalidInput
from deconflict.geometry.outline import validate_outline
from deconflict.model.agreement import Agreement
from deconflict.model.conflict import Finding
from deconflict.model.filing import Filing, FilingType, State, make_ovn
from deconflict.model.geojson import format_time, volume_from_feature

__all__ = ["check_feature_collection", "filings_from_feature_collection"]

#: The time stamped on filings built from a file (it only feeds their version tokens).
_FILED_AT = datetime(1970, 1, 1, tzinfo=UTC)


def filings_from_feature_collection(doc: Any, agreement: Agreement) -> list[Filing]:
    """One one-volume intent per Feature, owned by its `party`. Raises InvalidInput
    listing every broken rule, each field prefixed with ``features[i]``."""
    if not isinstance(doc, Mapping) or doc.get("type") != "FeatureCollection":
        raise InvalidInput.one("type", "must be 'FeatureCollection'")
    features = doc.get("features")
    if not isinstance(features, list):
        raise InvalidInput.one("features", "must be an array of GeoJSON Features")
    errors: list[FieldError] = []
    filings: list[Filing] = []
    seen: dict[str, int] = {}
    kinds = ", ".join(sorted(agreement.kinds))
    for i, feature in enumerate(features):
        where = f"features[{i}]"
        try:
            volume, extras = volume_from_feature(feature, extra_properties={"party", "kind"})
            validate_outline(volume.outline, max_area_m2=agreement.max_volume_area_m2)
        except InvalidInput as exc:
            errors += exc.prefixed(where).errors
            continue
        local: list[FieldError] = []
        fid = feature.get("id")
        if isinstance(fid, bool) or not isinstance(fid, str | int) or fid == "":
            local.append(FieldError(f"{where}.id", "is required and must be a non-empty string or a number"))
        else:
            fid = str(fid)
            if fid in seen:
                local.append(FieldError(f"{where}.id", f"duplicate id {fid!r} (also features[{seen[fid]}])"))
            else:
                seen[fid] = i
        party = extras.get("party")
        if not isinstance(party, str) or not party.strip():
            local.append(
                FieldError(f"{where}.properties.party", "is required and must be a non-empty string")
            )
        kind = extras.get("kind")
        if not isinstance(kind, str) or kind not in agreement.kinds:
            local.append(
                FieldError(
                    f"{where}.properties.kind",
                    f"unknown kind {kind!r} (the agreement has: {kinds})",
                )
            )
        if local:
            errors += local
            continue
        assert isinstance(fid, str) and isinstance(party, str) and isinstance(kind, str)
        filings.append(
            Filing(
                id=fid,
                type=FilingType.INTENT,
                owner=party,
                kind=kind,
                volumes=(volume,),
                state=State.ACCEPTED,
                priority=agreement.kinds[kind].priority,
                version=1,
                ovn=make_ovn(fid, 1, _FILED_AT),
                created_at=_FILED_AT,
                updated_at=_FILED_AT,
                notice_s=0.0,
                late=False,
            )
        )
    if errors:
        raise InvalidInput(errors)
    return filings


def check_feature_collection(doc: Any, agreement: Agreement) -> Iterator[dict[str, Any]]:
    """Yield one dict per cross-party conflict, ordered by the features' positions
    (`a` before `b` in file order). The whole document is validated, and InvalidInput
    raised, when this is called, before anything is yielded."""
    filings = filings_from_feature_collection(doc, agreement)
    return (_row(f) for f in all_conflicts(filings, agreement))


def _row(f: Finding) -> dict[str, Any]:
    return {
        "a": f.a.id,
        "b": f.b.id,
        "party_a": f.a.owner,
        "party_b": f.b.owner,
        "kind_a": f.a.kind,
        "kind_b": f.b.kind,
        "time_start": format_time(f.time_start),
        "time_end": format_time(f.time_end),
        "horizontal_separation_m": f.horizontal_separation_m,
        "vertical_separation_m": f.vertical_separation_m,
        "time_separation_s": f.time_separation_s,
        "horizontal_buffer_m": f.separation.horizontal_m,
        "vertical_buffer_m": f.separation.vertical_m,
        "time_buffer_s": f.separation.time_s,
    }
