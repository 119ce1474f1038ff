"""A tactical alert: one per ongoing conflict between two tracks, or per unannounced
track inside another party's reservation, from opened (through updates) to closed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["AlertKind", "TacticalAlert"]


class AlertKind(StrEnum):
    CONFLICT = "conflict"  # tracks a and b: predicted conflict or loss of separation
    UNANNOUNCED = "unannounced"  # track a, flying no intent, inside reservation `filing`


@dataclass(frozen=True, slots=True)
class TacticalAlert:
    """Track ids are the picture's (``party/track``). `figures` are as of `updated_at`
    (the last scan that changed them materially, `deconflict.service.alerts.material`):
    for a conflict `t_cpa_s`, `d_cpa_m`, `t_in_s`, `t_out_s` (seconds from `updated_at`)
    and `los`; for an unannounced track its position `lat`, `lon`, `alt_m`."""

    id: str
    kind: AlertKind
    track_a: str
    party_a: str
    track_b: str | None
    party_b: str | None
    filing: str | None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    figures: Mapping[str, Any] = field(default_factory=dict)

    @property
    def parties(self) -> list[str]:
        return sorted({self.party_a, *([self.party_b] if self.party_b else [])})
