"""Track files for the batch tools: CSV or Parquet, read with pyarrow, checked, to `Tracks`.

Columns: `track_id, party, lat, lon, alt_m, gs_mps, trk_deg, vs_mps` (WGS84 degrees,
metres, m/s, degrees true), optionally `kind` (an agreement kind; otherwise one kind
for every row) and, in a recording, `time` (seconds as a number, a timestamp, or an
RFC 3339 string). Errors name the column (and the first bad row) and the rule.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from deconflict.detect.tactical import Tracks
from deconflict.errors import InvalidInput

__all__ = ["COLUMNS", "read_table", "times_s", "tracks_from_table"]

COLUMNS = ("track_id", "party", "lat", "lon", "alt_m", "gs_mps", "trk_deg", "vs_mps")
_TEXT = ("track_id", "party", "kind")
_RANGES = {
    "lat": (-90.0, 90.0),
    "lon": (-180.0, 180.0),
    "alt_m": (-1_000.0, 100_000.0),
    "gs_mps": (0.0, 2_000.0),
    "trk_deg": (-360.0, 360.0),
    "vs_mps": (-500.0, 500.0),
}


def read_table(path: str | Path, *, needs_time: bool = False) -> pa.Table:
    """The file as a table (Parquet by its .parquet/.pq suffix, else CSV), every
    required column present."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pq.read_table(path)
        else:
            types = {c: pa.string() for c in _TEXT}
            table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types=types))
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise InvalidInput.one("(file)", f"is not readable as {_kind(path)}: {exc}") from None
    wanted = COLUMNS + (("time",) if needs_time else ())
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise InvalidInput.one(missing[0], f"is a required column (columns: {', '.join(wanted)})")
    return table


def _kind(path: Path) -> str:
    return "Parquet" if path.suffix.lower() in (".parquet", ".pq") else "CSV"


def _numbers(table: pa.Table, name: str) -> NDArray[np.float64]:
    column = table.column(name)
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        raise InvalidInput.one(name, f"must be numbers (found {column.type})")
    values: NDArray[np.float64] = column.to_numpy(zero_copy_only=False).astype(np.float64)
    lo, hi = _RANGES[name]
    bad = np.flatnonzero(~(np.isfinite(values) & (values >= lo) & (values <= hi)))
    if len(bad):
        raise InvalidInput.one(f"{name}[{bad[0]}]", f"must be a number within [{lo:g}, {hi:g}]")
    return values


def _texts(table: pa.Table, name: str) -> tuple[str, ...]:
    column = table.column(name)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.cast(column, pa.string())
    values = column.to_pylist()
    for i, v in enumerate(values):
        if not v:
            raise InvalidInput.one(f"{name}[{i}]", "must be a non-empty string")
    return tuple(values)


def tracks_from_table(
    table: pa.Table, kinds: Collection[str], default_kind: str, *, unique: bool = True
) -> Tracks:
    """The rows as `Tracks`; `kind` from its column or `default_kind`, either one of
    `kinds`; with `unique`, each track id once (a snapshot)."""
    ids = _texts(table, "track_id")
    if unique and len(set(ids)) != len(ids):
        seen: set[str] = set()
        for i, t in enumerate(ids):
            if t in seen:
                raise InvalidInput.one(f"track_id[{i}]", f"{t!r} appears twice in one snapshot")
            seen.add(t)
    kind = _texts(table, "kind") if "kind" in table.column_names else (default_kind,) * len(ids)
    for i, k in enumerate(kind):
        if k not in kinds:
            where = f"kind[{i}]" if "kind" in table.column_names else "--kind"
            raise InvalidInput.one(
                where, f"{k!r} is not a kind of the agreement ({', '.join(sorted(kinds))})"
            )
    return Tracks(
        ids,
        _texts(table, "party"),
        kind,
        *(_numbers(table, c) for c in ("lat", "lon", "alt_m", "gs_mps", "trk_deg", "vs_mps")),
    )


def times_s(table: pa.Table) -> tuple[NDArray[np.float64], bool]:
    """The `time` column in seconds, and whether it was absolute (timestamps or
    RFC 3339: then seconds since 1970 UTC) rather than plain numbers."""
    column = table.column("time")
    absolute = not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type))
    if absolute:
        try:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                column = pc.cast(column, pa.timestamp("us", tz="UTC"))
            column = pc.cast(column, pa.timestamp("us", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidInput.one("time", f"must be seconds, timestamps or RFC 3339 times: {exc}") from None
        values = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64) / 1e6
    else:
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise InvalidInput.one(f"time[{bad[0]}]", "must be a time")
    backwards = np.flatnonzero(np.diff(values) < 0)
    if len(backwards):
        raise InvalidInput.one(f"time[{backwards[0] + 1}]", "must not go back: a recording is in time order")
    return values, absolute
