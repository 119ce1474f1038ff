"""A batch of position reports as columns, read from JSON or Arrow IPC, and validated.

Two ways in, one set of rules:

- JSON: ``{"reports": [{"track": "T1", "time": "2030-06-01T12:00:00Z", "lat": ..., ...}]}``;
- Arrow IPC (stream format, ``application/vnd.apache.arrow.stream``): one record batch
  or more with the same column names (``time`` as a UTC timestamp, or float seconds
  since the epoch), read column-wise without touching each row in Python.

Validation is vectorised (numpy) and names each refused row and field with its rule,
``reports[3].lat: must be within [-90, 90]``; a batch with one bad row is refused whole.
Units: WGS84 degrees, metres, m/s, track in degrees true; times UTC.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from deconflict.errors import FieldError, InvalidInput

__all__ = ["ARROW_MEDIA_TYPE", "MAX_REPORTS", "NUMERIC", "Reports", "from_arrow", "from_json", "validate"]

ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
#: reports in one batch
MAX_REPORTS = 200_000
#: at most this many field errors are listed (the batch is refused either way)
MAX_ERRORS = 50
#: a report may be this far ahead of the server's clock (clocks differ a little)
MAX_AHEAD_S = 5.0

_F64 = NDArray[np.float64]
_ID = re.compile(r"[A-Za-z0-9._:@-]{1,64}\Z")
_ICAO = re.compile(r"[0-9A-Fa-f]{6}\Z")

#: numeric fields: (low, high, closed on the high side)
NUMERIC: dict[str, tuple[float, float, bool]] = {
    "lat": (-90.0, 90.0, True),
    "lon": (-180.0, 180.0, True),
    "alt_m": (-1_000.0, 40_000.0, True),
    "gs_mps": (0.0, 1_500.0, True),
    "trk_deg": (0.0, 360.0, False),
    "vs_mps": (-300.0, 300.0, True),
}
_TEXT = ("callsign", "icao24", "intent", "kind")
_ALLOWED = {"track", "time", *NUMERIC, *_TEXT}


@dataclass(frozen=True, slots=True, eq=False)
class Reports:
    """One row per report; `time_s` in seconds since the epoch (UTC)."""

    track: list[str]
    time_s: _F64
    lat: _F64
    lon: _F64
    alt_m: _F64
    gs_mps: _F64
    trk_deg: _F64
    vs_mps: _F64
    callsign: list[str | None]
    icao24: list[str | None]
    intent: list[str | None]
    kind: list[str | None]
    #: what reading found wrong (reported with the rest by `validate`)
    errors: tuple[FieldError, ...] = ()

    def __len__(self) -> int:
        return len(self.track)


def _floats(values: list[Any], name: str, errors: list[FieldError]) -> _F64:
    try:
        out = np.array(values, dtype=np.float64)
        if out.ndim == 1:
            kinds = {type(v) for v in values}
            if kinds <= {int, float}:
                return out
    except (TypeError, ValueError):
        pass
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float):
            errors.append(FieldError(f"reports[{i}].{name}", "is required, a number"))
        else:
            out[i] = float(v)
    return out


def _epoch_s(value: Any) -> float | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.utcoffset() != timedelta(0):
        return None
    return t.timestamp()


def from_json(body: Any) -> Reports:
    """``{"reports": [...]}`` to columns; a malformed row or field is refused by name."""
    if not isinstance(body, dict) or not isinstance(body.get("reports"), list):
        raise InvalidInput.one("reports", "is required: a list of position reports")
    if set(body) - {"reports"}:
        raise InvalidInput.one(sorted(set(body) - {"reports"})[0], "is not a field of a track batch")
    rows: list[Any] = body["reports"]
    if len(rows) > MAX_REPORTS:
        raise InvalidInput.one("reports", f"must hold at most {MAX_REPORTS} reports")
    errors: list[FieldError] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(FieldError(f"reports[{i}]", "must be an object"))
        elif not row.keys() <= _ALLOWED:
            extra = sorted(set(row) - _ALLOWED)[0]
            errors.append(FieldError(f"reports[{i}].{extra}", "is not a field of a position report"))
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise InvalidInput(errors)
    times: list[Any] = [r.get("time") for r in rows]
    time_s = np.array([_epoch_s(t) for t in times], dtype=np.float64)  # None -> nan
    for i in np.flatnonzero(np.isnan(time_s))[:MAX_ERRORS]:
        errors.append(FieldError(f"reports[{i}].time", "is required: an RFC 3339 UTC time"))
    cols = {name: _floats([r.get(name) for r in rows], name, errors) for name in NUMERIC}
    text = {name: [r.get(name) for r in rows] for name in _TEXT}
    track: list[Any] = [r.get("track") for r in rows]
    return Reports(
        track, time_s, cols["lat"], cols["lon"], cols["alt_m"], cols["gs_mps"], cols["trk_deg"],
        cols["vs_mps"], text["callsign"], text["icao24"], text["intent"], text["kind"], tuple(errors),
    )  # fmt: skip


def from_arrow(data: bytes) -> Reports:
    """An Arrow IPC stream to columns (see the module's doc)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        table = pa.ipc.open_stream(data).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput.one("(body)", f"must be an Arrow IPC stream: {exc}") from None
    names = set(table.column_names)
    if not names <= _ALLOWED:
        raise InvalidInput.one(sorted(names - _ALLOWED)[0], "is not a field of a position report")
    if table.num_rows > MAX_REPORTS:
        raise InvalidInput.one("reports", f"must hold at most {MAX_REPORTS} reports")
    n = table.num_rows
    errors: list[FieldError] = []
    for name in ("track", "time", *NUMERIC):
        if name not in names:
            errors.append(FieldError(name, "is a required column"))
    if errors:
        raise InvalidInput(errors)

    def column(name: str, want: Any) -> Any:
        col = table.column(name)
        try:
            return col.cast(want)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InvalidInput.one(name, f"must be a column of {want}") from None

    t = table.column("time")
    if pa.types.is_timestamp(t.type):
        if t.type.tz not in ("UTC", "+00:00", "Z"):
            raise InvalidInput.one("time", "must be a UTC timestamp column (tz='UTC')")
        micros = pc.cast(t, pa.timestamp("us", "UTC")).cast(pa.int64())
        time_s = micros.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6
        nulls = np.asarray(t.is_null().to_numpy(zero_copy_only=False))
        time_s[nulls] = np.nan
    else:
        time_s = column("time", pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    for i in np.flatnonzero(np.isnan(time_s))[:MAX_ERRORS]:
        errors.append(FieldError(f"reports[{i}].time", "is required: a UTC time"))
    cols: dict[str, _F64] = {}
    for name in NUMERIC:
        col = column(name, pa.float64())
        values = col.to_numpy(zero_copy_only=False).astype(np.float64)
        for i in np.flatnonzero(np.isnan(values))[: MAX_ERRORS - len(errors)]:
            errors.append(FieldError(f"reports[{i}].{name}", "is required, a number"))
        cols[name] = values
    text: dict[str, list[Any]] = {
        name: column(name, pa.string()).to_pylist() if name in names else [None] * n for name in _TEXT
    }
    track = table.column("track").to_pylist()
    return Reports(
        track, time_s, cols["lat"], cols["lon"], cols["alt_m"], cols["gs_mps"], cols["trk_deg"],
        cols["vs_mps"], text["callsign"], text["icao24"], text["intent"], text["kind"], tuple(errors),
    )  # fmt: skip


def _every(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """`pattern` (ending in ``\\Z``) for a newline-joined list of values, each matching it."""
    one = pattern.pattern.removesuffix(r"\Z")
    return re.compile(rf"(?:{one}\n)*{one}\Z")


_EVERY = {_ID: _every(_ID), _ICAO: _every(_ICAO)}


def _bad_ids(
    values: Sequence[Any], name: str, pattern: re.Pattern[str], rule: str, *, optional: bool
) -> list[FieldError]:
    # the usual case, every value well-formed: one pass of the pattern over them all, in C
    # (a value that is not a string fails the join, one holding a newline the count)
    given = [v for v in values if v is not None] if optional else values
    try:
        joined = "\n".join(given)
    except TypeError:
        joined = None
    if joined is not None and (
        not given or (joined.count("\n") == len(given) - 1 and _EVERY[pattern].match(joined))
    ):
        return []
    out: list[FieldError] = []
    for i, v in enumerate(values):
        if v is None and optional:
            continue
        if not isinstance(v, str) or pattern.match(v) is None:
            out.append(FieldError(f"reports[{i}].{name}", rule))
            if len(out) >= MAX_ERRORS:
                break
    return out


def validate(reports: Reports, *, now_s: float, kinds: Sequence[str]) -> None:
    """Every rule, on every row; raises `InvalidInput` naming rows, fields and rules."""
    errors: list[FieldError] = list(reports.errors)
    if len(reports) == 0:
        raise InvalidInput.one("reports", "must hold at least one report")
    for name, (low, high, closed) in NUMERIC.items():
        v: _F64 = getattr(reports, name)
        given = {e.field for e in reports.errors}
        ok = np.isfinite(v) & (v >= low) & ((v <= high) if closed else (v < high))
        ok |= np.array([f"reports[{i}].{name}" in given for i in range(len(v))]) if given else False
        for i in np.flatnonzero(~ok)[:MAX_ERRORS]:
            bracket = "]" if closed else ")"
            errors.append(
                FieldError(
                    f"reports[{i}].{name}", f"must be a finite number within [{low:g}, {high:g}{bracket}"
                )
            )
    ahead = reports.time_s > now_s + MAX_AHEAD_S
    for i in np.flatnonzero(ahead)[:MAX_ERRORS]:
        errors.append(
            FieldError(
                f"reports[{i}].time", f"must not be more than {MAX_AHEAD_S:g} s ahead of the server's clock"
            )
        )
    # ids: a regular-expression pass only over the distinct values (tracks repeat)
    errors += _bad_ids(
        reports.track, "track", _ID, "is required: 1 to 64 of A-Z a-z 0-9 . _ : @ -", optional=False
    )
    errors += _bad_ids(
        reports.intent,
        "intent",
        _ID,
        "must be an intent id (1 to 64 of A-Z a-z 0-9 . _ : @ -)",
        optional=True,
    )
    errors += _bad_ids(
        reports.icao24, "icao24", _ICAO, "must be 6 hexadecimal digits (ICAO 24-bit address)", optional=True
    )
    for i, c in enumerate(reports.callsign):
        if c is not None and (not isinstance(c, str) or not 1 <= len(c) <= 8 or not c.isalnum()):
            errors.append(FieldError(f"reports[{i}].callsign", "must be 1 to 8 letters or digits"))
    known = set(kinds)
    for i, k in enumerate(reports.kind):
        if k is not None and k not in known:
            errors.append(
                FieldError(f"reports[{i}].kind", f"must be a kind of the agreement: {', '.join(kinds)}")
            )
    if errors:
        raise InvalidInput(errors[:MAX_ERRORS])
