"""Conflicts between two filings' versions, as the strategic detector finds them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from deconflict.model.filing import FilingRef
from deconflict.model.geojson import format_time


class ConflictState(StrEnum):
    OPEN = "open"  # both versions are current and live
    CLOSED = "closed"  # one side was superseded, ended or withdrawn


@dataclass(frozen=True, slots=True)
class Separation:
    """The agreed minimum separation between two volumes (or the buffers of a kind)."""

    horizontal_m: float
    vertical_m: float
    time_s: float


@dataclass(frozen=True, slots=True)
class Finding:
    """What detection says of two filings (pure; no identity, no timestamps).

    `time_start`/`time_end` span the offending volume pairs' common time (when the
    windows are apart by no more than the temporal buffer, the gap between them);
    the separations are the smallest over the offending volume pairs, each `0`
    when the volumes overlap in that dimension.
    """

    a: FilingRef
    b: FilingRef
    time_start: datetime
    time_end: datetime
    horizontal_separation_m: float
    vertical_separation_m: float
    time_separation_s: float
    separation: Separation

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values, times as RFC 3339 UTC (the API's and the log's form)."""
        return {
            "a": self.a.as_dict(),
            "b": self.b.as_dict(),
            "time_start": format_time(self.time_start),
            "time_end": format_time(self.time_end),
            "horizontal_separation_m": self.horizontal_separation_m,
            "vertical_separation_m": self.vertical_separation_m,
            "time_separation_s": self.time_separation_s,
            "separation": {
                "horizontal_m": self.separation.horizontal_m,
                "vertical_m": self.separation.vertical_m,
                "time_s": self.separation.time_s,
            },
        }


@dataclass(frozen=True, slots=True)
class Conflict:
    """A recorded finding: `a` is the filing whose submission detected it."""

    id: str
    finding: Finding
    state: ConflictState
    detected_at: datetime
    closed_at: datetime | None = None
