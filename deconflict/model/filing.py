"""Filings: notices of activity (operational intents) and airspace reservations
(constraints). Both are sets of 4D volumes, versioned: every change supersedes the
last version and carries a new version token (`ovn`, as in ASTM F3548-21)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from deconflict.model.volume import Volume4D


class FilingType(StrEnum):
    INTENT = "intent"
    CONSTRAINT = "constraint"


class State(StrEnum):
    ACCEPTED = "accepted"
    ACTIVATED = "activated"
    NONCONFORMING = "nonconforming"
    CONTINGENT = "contingent"
    ENDED = "ended"


#: Which state changes the owner may ask for (F3548-21 operational intent lifecycle).
INTENT_TRANSITIONS: dict[State, frozenset[State]] = {
    State.ACCEPTED: frozenset({State.ACTIVATED, State.ENDED}),
    State.ACTIVATED: frozenset({State.ACTIVATED, State.NONCONFORMING, State.CONTINGENT, State.ENDED}),
    State.NONCONFORMING: frozenset({State.ACTIVATED, State.NONCONFORMING, State.CONTINGENT, State.ENDED}),
    State.CONTINGENT: frozenset({State.CONTINGENT, State.ENDED}),
    State.ENDED: frozenset(),
}
#: Constraints are either in force (accepted) or ended.
CONSTRAINT_TRANSITIONS: dict[State, frozenset[State]] = {
    State.ACCEPTED: frozenset({State.ENDED}),
    State.ENDED: frozenset(),
}
#: States a filing may be created in.
INITIAL_STATES: dict[FilingType, frozenset[State]] = {
    FilingType.INTENT: frozenset({State.ACCEPTED, State.ACTIVATED}),
    FilingType.CONSTRAINT: frozenset({State.ACCEPTED}),
}


def transitions(filing_type: FilingType) -> dict[State, frozenset[State]]:
    return INTENT_TRANSITIONS if filing_type is FilingType.INTENT else CONSTRAINT_TRANSITIONS


def make_ovn(filing_id: str, version: int, updated_at: datetime) -> str:
    """The version token: opaque to clients, unique per (filing, version)."""
    raw = f"{filing_id}|{version}|{updated_at.isoformat()}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Filing:
    """One version of an intent or a constraint.

    `notice_s` is the time from the server's receipt of this version to the start
    of its earliest new or changed volume; `late` is true when that is shorter
    than the agreed minimum for `kind`.
    """

    id: str
    type: FilingType
    owner: str
    kind: str
    volumes: tuple[Volume4D, ...]
    state: State
    priority: int
    version: int
    ovn: str
    created_at: datetime
    updated_at: datetime
    notice_s: float
    late: bool

    @property
    def time_start(self) -> datetime:
        return min(v.time_start for v in self.volumes)

    @property
    def time_end(self) -> datetime:
        return max(v.time_end for v in self.volumes)

    @property
    def live(self) -> bool:
        return self.state is not State.ENDED

    def ref(self) -> FilingRef:
        return FilingRef(self.id, self.type, self.owner, self.kind, self.version, self.ovn)


@dataclass(frozen=True, slots=True)
class FilingRef:
    """Names one version of a filing."""

    id: str
    type: FilingType
    owner: str
    kind: str
    version: int
    ovn: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (the API's and the log's form)."""
        return {
            "id": self.id,
            "type": self.type.value,
            "owner": self.owner,
            "kind": self.kind,
            "version": self.version,
            "ovn": self.ovn,
        }
