"""The agreement: the rules every party signed up to, as numbers.

`Agreement.from_mapping` validates a parsed TOML document; every error names the
key and the rule. Loading the file is `deconflict.agreements.load`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from deconflict.errors import AgreementError
from deconflict.model.conflict import Separation

REQUIRED_KINDS = ("crewed_flight", "uas_flight", "air_defence_activity", "exercise", "reservation")
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"  # a party's or a kind's id
_ID = re.compile(ID_PATTERN)
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class ConflictAction(StrEnum):
    BLOCK = "block"  # refuse a filing that conflicts with one of equal or higher priority
    WARN = "warn"  # accept it; the conflicts are recorded and returned


class LateAction(StrEnum):
    REJECT = "reject"
    FLAG = "flag"


class DownAction(StrEnum):
    """What a party's DOWN status does to its filings."""

    KEEP = "keep"  # nothing: they keep their priority
    LOWEST_PRIORITY = "lowest_priority"  # they block no one (F3548 treats a USS that is down so)


@dataclass(frozen=True, slots=True)
class ProtectedZone:
    """Tactical separation around a live track: a cylinder of `radius_m` and
    `half_height_m` (above and below), watched `lookahead_s` ahead."""

    radius_m: float
    half_height_m: float
    lookahead_s: float

    def widest(self, other: ProtectedZone) -> ProtectedZone:
        """The zone between two kinds: for each dimension the larger wins."""
        return ProtectedZone(
            max(self.radius_m, other.radius_m),
            max(self.half_height_m, other.half_height_m),
            max(self.lookahead_s, other.lookahead_s),
        )


@dataclass(frozen=True, slots=True)
class KindRules:
    name: str
    min_notice_s: float
    horizontal_buffer_m: float
    vertical_buffer_m: float
    time_buffer_s: float
    priority: int
    #: the tactical protected zone; None (an agreement written before it had one)
    #: takes the strategic buffers: horizontal, vertical, and time as the look-ahead
    tactical: ProtectedZone | None = None

    @property
    def buffers(self) -> Separation:
        return Separation(self.horizontal_buffer_m, self.vertical_buffer_m, self.time_buffer_s)

    @property
    def protected_zone(self) -> ProtectedZone:
        if self.tactical is not None:
            return self.tactical
        return ProtectedZone(self.horizontal_buffer_m, self.vertical_buffer_m, self.time_buffer_s)


@dataclass(frozen=True, slots=True)
class AgreementParty:
    id: str
    name: str
    language: str
    escalation: tuple[str, ...] = ()
    """Contact levels a reply that is overdue escalates to, in order."""


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long a hotline message may wait to be delivered, and to be answered."""

    delivery_s: float
    reply_s: float | None


@dataclass(frozen=True, slots=True)
class HotlineRules:
    """The hotline's terms: heartbeats, what DOWN does, retries, per-code deadlines
    (overriding the catalogue's defaults)."""

    heartbeat_period_s: float = 30.0
    """How often each party's client beats."""
    down_after_s: float = 90.0
    """A party silent this long is DOWN for everyone."""
    down_filings: DownAction = DownAction.LOWEST_PRIORITY
    delivery_retries: int = 3
    """How many times an undelivered message is sent again, one delivery deadline apart."""
    deadlines: Mapping[str, Deadlines] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Agreement:
    name: str
    version: str
    parties: tuple[AgreementParty, ...]
    kinds: Mapping[str, KindRules]
    conflict_action: ConflictAction
    late_notice_action: LateAction
    max_volume_area_m2: float
    max_volume_duration_s: float
    max_volumes_per_filing: int
    #: whether a party's own live tracks are checked against each other
    tactical_same_party: bool = False
    #: how far (metres, horizontally and vertically; seconds, in time) a track may fly
    #: outside its intent's volumes before the intent is made nonconforming
    conformance_tolerance_m: float = 0.0
    conformance_tolerance_s: float = 0.0
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The agreement as its file gave it (what the shared record keeps of it)."""
    hotline: HotlineRules = field(default_factory=HotlineRules)

    def kind(self, name: str) -> KindRules | None:
        return self.kinds.get(name)

    def party(self, party_id: str) -> AgreementParty | None:
        return next((p for p in self.parties if p.id == party_id), None)

    def separation(self, kind_a: str, kind_b: str) -> Separation:
        """The buffers between two kinds: for each dimension the larger wins."""
        a, b = self.kinds[kind_a], self.kinds[kind_b]
        return Separation(
            max(a.horizontal_buffer_m, b.horizontal_buffer_m),
            max(a.vertical_buffer_m, b.vertical_buffer_m),
            max(a.time_buffer_s, b.time_buffer_s),
        )

    def protected_zone(self, kind_a: str, kind_b: str) -> ProtectedZone:
        """The tactical zone between tracks of two kinds: for each dimension the larger wins."""
        return self.kinds[kind_a].protected_zone.widest(self.kinds[kind_b].protected_zone)

    @property
    def max_buffers(self) -> Separation:
        """The largest buffer of any kind, per dimension: what a search must reach."""
        return Separation(
            max(k.horizontal_buffer_m for k in self.kinds.values()),
            max(k.vertical_buffer_m for k in self.kinds.values()),
            max(k.time_buffer_s for k in self.kinds.values()),
        )

    def with_buffers(
        self,
        horizontal_m: float | None = None,
        vertical_m: float | None = None,
        time_s: float | None = None,
    ) -> Agreement:
        """A copy whose every kind has the given buffers (None keeps a kind's own)."""
        kinds = {
            name: KindRules(
                name,
                k.min_notice_s,
                k.horizontal_buffer_m if horizontal_m is None else horizontal_m,
                k.vertical_buffer_m if vertical_m is None else vertical_m,
                k.time_buffer_s if time_s is None else time_s,
                k.priority,
                k.tactical,
            )
            for name, k in self.kinds.items()
        }
        return dataclasses.replace(self, kinds=kinds)

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any]) -> Agreement:
        _only(doc, "", {"agreement", "parties", "kinds", "hotline"})
        head = _table(doc, "agreement")
        _only(
            head,
            "agreement",
            {
                "name",
                "version",
                "conflict_action",
                "late_notice_action",
                "max_volume_area_km2",
                "max_volume_duration_s",
                "max_volumes_per_filing",
                "tactical_same_party",
                "conformance_tolerance_m",
                "conformance_tolerance_s",
            },
        )
        name = _str(head, "agreement.name")
        version = _str(head, "agreement.version")
        conflict_action = _enum(head, "agreement.conflict_action", ConflictAction)
        late_action = _enum(head, "agreement.late_notice_action", LateAction)
        max_area_km2 = _number(head, "agreement.max_volume_area_km2", positive=True)
        max_duration_s = _number(head, "agreement.max_volume_duration_s", positive=True)
        max_volumes = _number(head, "agreement.max_volumes_per_filing", positive=True)
        if max_volumes != int(max_volumes):
            raise AgreementError("agreement.max_volumes_per_filing", "must be a whole number")
        same_party = head.get("tactical_same_party", False)
        if not isinstance(same_party, bool):
            raise AgreementError("agreement.tactical_same_party", "must be true or false")
        tolerance: dict[str, float] = {}
        for key in ("conformance_tolerance_m", "conformance_tolerance_s"):
            value = head.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e6:
                raise AgreementError(f"agreement.{key}", "must be a number within [0, 1000000)")
            tolerance[key] = float(value)

        raw_parties = doc.get("parties")
        if not isinstance(raw_parties, list) or not raw_parties:
            raise AgreementError("parties", "must be a non-empty array of tables ([[parties]])")
        parties: list[AgreementParty] = []
        for i, p in enumerate(raw_parties):
            key = f"parties[{i}]"
            if not isinstance(p, Mapping):
                raise AgreementError(key, "must be a table")
            _only(p, key, {"id", "name", "language", "escalation"})
            pid = _str(p, f"{key}.id")
            if not _ID.match(pid):
                raise AgreementError(
                    f"{key}.id", "must be 1-63 characters of a-z, 0-9, '_' or '-', starting alphanumeric"
                )
            if any(q.id == pid for q in parties):
                raise AgreementError(f"{key}.id", f"duplicate party id {pid!r}")
            lang = _str(p, f"{key}.language")
            if not _LANG.match(lang):
                raise AgreementError(f"{key}.language", "must be a BCP 47 language tag such as 'en' or 'ar'")
            escalation = p.get("escalation", [])
            if not isinstance(escalation, list) or not all(
                isinstance(c, str) and c.strip() for c in escalation
            ):
                raise AgreementError(
                    f"{key}.escalation", "must be a list of non-empty contact names, in order"
                )
            parties.append(AgreementParty(pid, _str(p, f"{key}.name"), lang, tuple(escalation)))

        raw_kinds = _table(doc, "kinds")
        kinds: dict[str, KindRules] = {}
        for kname, k in raw_kinds.items():
            key = f"kinds.{kname}"
            if not _ID.match(kname):
                raise AgreementError(key, "kind names must be of a-z, 0-9, '_' or '-'")
            if not isinstance(k, Mapping):
                raise AgreementError(key, "must be a table")
            _only(
                k,
                key,
                {"min_notice_s", "horizontal_buffer_m", "vertical_buffer_m", "time_buffer_s", "priority"}
                | set(_TACTICAL_KEYS),
            )
            prio = _number(k, f"{key}.priority")
            if prio != int(prio) or not 0 <= prio <= 1000:
                raise AgreementError(f"{key}.priority", "must be a whole number within [0, 1000]")
            kinds[kname] = KindRules(
                kname,
                _number(k, f"{key}.min_notice_s"),
                _number(k, f"{key}.horizontal_buffer_m"),
                _number(k, f"{key}.vertical_buffer_m"),
                _number(k, f"{key}.time_buffer_s"),
                int(prio),
                _protected_zone(k, key),
            )
        for required in REQUIRED_KINDS:
            if required not in kinds:
                raise AgreementError(f"kinds.{required}", "is required")
        return cls(
            name,
            version,
            tuple(parties),
            kinds,
            conflict_action,
            late_action,
            max_area_km2 * 1e6,
            max_duration_s,
            int(max_volumes),
            tactical_same_party=same_party,
            conformance_tolerance_m=tolerance["conformance_tolerance_m"],
            conformance_tolerance_s=tolerance["conformance_tolerance_s"],
            document=MappingProxyType(dict(doc)),
            hotline=_hotline(doc.get("hotline", {})),
        )


_TACTICAL_KEYS = ("tactical_radius_m", "tactical_half_height_m", "lookahead_s")


def _protected_zone(kind: Mapping[str, Any], key: str) -> ProtectedZone | None:
    """The kind's tactical keys: all three or none (none: the strategic buffers stand in)."""
    given = [k for k in _TACTICAL_KEYS if k in kind]
    if not given:
        return None
    for k in _TACTICAL_KEYS:
        if k not in kind:
            raise AgreementError(f"{key}.{k}", f"is required with {', '.join(given)}")
    radius, half_height, lookahead = (_number(kind, f"{key}.{k}", positive=True) for k in _TACTICAL_KEYS)
    return ProtectedZone(radius, half_height, lookahead)


_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,62}$")


def _hotline(table: Any) -> HotlineRules:
    """The optional [hotline] table; absent keys keep HotlineRules' defaults."""
    if not isinstance(table, Mapping):
        raise AgreementError("hotline", "must be a table")
    _only(
        table,
        "hotline",
        {"heartbeat_period_s", "down_after_s", "down_filings", "delivery_retries", "deadlines"},
    )
    default = HotlineRules()
    period = (
        _number(table, "hotline.heartbeat_period_s", positive=True)
        if "heartbeat_period_s" in table
        else default.heartbeat_period_s
    )
    down_after = (
        _number(table, "hotline.down_after_s", positive=True)
        if "down_after_s" in table
        else default.down_after_s
    )
    if down_after < period:
        raise AgreementError("hotline.down_after_s", "must be at least heartbeat_period_s")
    down = (
        _enum(table, "hotline.down_filings", DownAction) if "down_filings" in table else default.down_filings
    )
    retries = default.delivery_retries
    if "delivery_retries" in table:
        n = _number(table, "hotline.delivery_retries")
        if n != int(n) or n > 100:
            raise AgreementError("hotline.delivery_retries", "must be a whole number within [0, 100]")
        retries = int(n)
    raw = table.get("deadlines", {})
    if not isinstance(raw, Mapping):
        raise AgreementError("hotline.deadlines", "must be a table of CODE = {delivery_s, reply_s}")
    deadlines: dict[str, Deadlines] = {}
    for code, d in raw.items():
        key = f"hotline.deadlines.{code}"
        if not _CODE.match(code):
            raise AgreementError(key, "must be a message code such as CONFLICT_WARNING")
        if not isinstance(d, Mapping):
            raise AgreementError(key, "must be a table with delivery_s and reply_s")
        _only(d, key, {"delivery_s", "reply_s"})
        deadlines[code] = Deadlines(
            _number(d, f"{key}.delivery_s", positive=True), _number(d, f"{key}.reply_s", positive=True)
        )
    return HotlineRules(period, down_after, down, retries, deadlines)


def _only(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            path = f"{where}.{key}" if where else key
            raise AgreementError(path, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _table(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    if not isinstance(value, Mapping):
        raise AgreementError(key, "is required and must be a table")
    return value


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _str(table: Mapping[str, Any], path: str) -> str:
    value = table.get(_leaf(path))
    if not isinstance(value, str) or not value.strip():
        raise AgreementError(path, "is required and must be a non-empty string")
    return value


def _number(table: Mapping[str, Any], path: str, *, positive: bool = False) -> float:
    value = table.get(_leaf(path))
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AgreementError(path, "is required and must be a finite number")
    if positive and value <= 0:
        raise AgreementError(path, "must be > 0")
    if not positive and value < 0:
        raise AgreementError(path, "must be >= 0")
    return float(value)


def _enum(table: Mapping[str, Any], path: str, enum: type[StrEnum]) -> Any:
    value = table.get(_leaf(path))
    allowed = [e.value for e in enum]
    if value not in allowed:
        raise AgreementError(path, f"must be one of {', '.join(repr(a) for a in allowed)}")
    return enum(value)
