"""Strategic detection: filings against filings, in four dimensions, with the agreed buffers.

Two volumes conflict when, for the buffers of their two kinds (per dimension the
larger wins, `Agreement.separation`):

- the horizontal distance between their outlines is at most the horizontal buffer,
- the gap between their altitude bands is at most the vertical buffer, and
- the gap between their time windows is at most the temporal buffer.

Touching counts (≤). Two filings conflict when any pair of their volumes does.

The fast path, for all volume pairs of one filing against many: a numpy filter on
altitude and time gaps; a bounding-circle filter on the sphere (conservative by a
margin larger than the sphere's error against the ellipsoid); then the exact
distance, vectorised with shapely, for the survivors only. Each surviving pair is
measured in a local plane centred midway between its two outlines
(`deconflict.geometry.outline.horizontal_distances_m`), so the answer for a pair
never depends on which filing was submitted or what else was in the batch, and
equals `horizontal_distance_m` exactly. Times are compared as integer
microseconds, so "touching" is exact.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import shapely
from numpy.typing import NDArray

from deconflict.geometry.outline import MEAN_RADIUS_M, horizontal_distances_m
from deconflict.model.agreement import Agreement
from deconflict.model.conflict import Finding, Separation
from deconflict.model.filing import Filing
from deconflict.model.volume import Circle

__all__ = ["PreparedCache", "all_conflicts", "compare", "detect"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_F64 = NDArray[np.float64]
_I64 = NDArray[np.int64]

#: The bounding-circle filter keeps a pair unless its centres are further apart than
#: (sum of bounding radii + buffer) · (1 + _REL_SLACK) + _ABS_SLACK_M: the sphere of
#: mean radius is within 0.4 % of the ellipsoid, and the local plane within 0.1 %
#: of the geodesic at the distances where the filter is close to deciding.
_REL_SLACK = 0.01
_ABS_SLACK_M = 10.0


def _us(t: datetime) -> int:
    return (t - _EPOCH) // _US


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What detection needs of one filing, independent of any projection."""

    filing: Filing
    lower_m: _F64
    upper_m: _F64
    start_us: _I64
    end_us: _I64
    unit: _F64  # (n, 3) unit vectors of the volumes' centres
    bound_m: _F64  # radius of a circle about the centre that covers the outline


def _prepare(filing: Filing) -> _Prepared:
    return _prepare_many([filing])[0]


def _prepare_many(filings: Sequence[Filing]) -> list[_Prepared]:
    """Prepare many filings with one pass of numpy over all their vertices."""
    lons: list[float] = []
    lats: list[float] = []
    counts: list[int] = []
    radii: list[float] = []
    lower: list[float] = []
    upper: list[float] = []
    start: list[int] = []
    end: list[int] = []
    for f in filings:
        for v in f.volumes:
            o = v.outline
            if isinstance(o, Circle):
                lons.append(o.lon)
                lats.append(o.lat)
                counts.append(1)
                radii.append(o.radius_m)
            else:
                for lon, lat in o.ring:
                    lons.append(lon)
                    lats.append(lat)
                counts.append(len(o.ring))
                radii.append(-1.0)
            lower.append(v.altitude_lower_m)
            upper.append(v.altitude_upper_m)
            start.append(_us(v.time_start))
            end.append(_us(v.time_end))
    if not counts:
        return []
    vertex_unit = _unit(np.asarray(lons), np.asarray(lats))
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    centre = np.add.reduceat(vertex_unit, first, axis=0)
    centre /= np.linalg.norm(centre, axis=1)[:, None]
    owner = np.repeat(np.arange(len(counts)), counts)
    chord = np.linalg.norm(vertex_unit - centre[owner], axis=1)
    angle = 2 * np.arcsin(np.minimum(chord / 2, 1.0))
    radius = np.asarray(radii)
    bound = np.where(radius >= 0, radius, np.maximum.reduceat(angle, first) * MEAN_RADIUS_M)
    lower_a, upper_a = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    start_a, end_a = np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64)
    out: list[_Prepared] = []
    k = 0
    for f in filings:
        n = len(f.volumes)
        sl = slice(k, k + n)
        out.append(_Prepared(f, lower_a[sl], upper_a[sl], start_a[sl], end_a[sl], centre[sl], bound[sl]))
        k += n
    return out


def _unit(lon: _F64, lat: _F64) -> _F64:
    lam, phi = np.radians(lon), np.radians(lat)
    cos_phi = np.cos(phi)
    return np.column_stack([cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)])


class PreparedCache:
    """A bounded cache of per-filing arrays, keyed by (id, version, ovn).

    Correct only when a version token names one content, as the service guarantees;
    pass one to `detect` from the service, not from code that reuses ids freely.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, int, str], _Prepared] = OrderedDict()
        self._lock = threading.Lock()  # threads share it; preparing runs outside the lock

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, filings: Sequence[Filing]) -> list[_Prepared]:
        found: list[_Prepared | None] = []
        missing: list[int] = []
        with self._lock:
            for i, f in enumerate(filings):
                key = (f.id, f.version, f.ovn)
                hit = self._entries.get(key)
                if hit is None:
                    missing.append(i)
                else:
                    self._entries.move_to_end(key)
                found.append(hit)
        made = _prepare_many([filings[i] for i in missing])
        with self._lock:
            for i, p in zip(missing, made, strict=True):
                found[i] = p
                self._entries[(p.filing.id, p.filing.version, p.filing.ovn)] = p
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return [p for p in found if p is not None]


def _compare_many(
    subject: _Prepared, others: Sequence[_Prepared], seps: Sequence[Separation]
) -> list[Finding | None]:
    """One finding (or None) per other filing, all volume pairs at once."""
    if not others:
        return []
    counts = np.array([len(o.lower_m) for o in others])
    owner = np.repeat(np.arange(len(others)), counts)
    lower = np.concatenate([o.lower_m for o in others])
    upper = np.concatenate([o.upper_m for o in others])
    start = np.concatenate([o.start_us for o in others])
    end = np.concatenate([o.end_us for o in others])
    unit = np.concatenate([o.unit for o in others])
    bound = np.concatenate([o.bound_m for o in others])
    h_buf = np.array([s.horizontal_m for s in seps], dtype=np.float64)[owner]
    v_buf = np.array([s.vertical_m for s in seps], dtype=np.float64)[owner]
    t_buf_us = np.array([s.time_s * 1e6 for s in seps], dtype=np.float64)[owner]

    # (subject volume i, other volume j) gaps; 0 where the bands or windows overlap
    v_gap = np.maximum(
        np.maximum(lower[None, :] - subject.upper_m[:, None], subject.lower_m[:, None] - upper[None, :]),
        0.0,
    )
    t_gap = np.maximum(
        np.maximum(start[None, :] - subject.end_us[:, None], subject.start_us[:, None] - end[None, :]),
        0,
    )
    keep = (v_gap <= v_buf) & (t_gap <= t_buf_us)
    if not keep.any():
        return [None] * len(others)
    chord = np.linalg.norm(subject.unit[:, None, :] - unit[None, :, :], axis=2)
    centre_m = 2 * np.arcsin(np.minimum(chord / 2, 1.0)) * MEAN_RADIUS_M
    reach = (subject.bound_m[:, None] + bound[None, :] + h_buf) * (1 + _REL_SLACK) + _ABS_SLACK_M
    keep &= centre_m <= reach
    ii, jj = np.nonzero(keep)
    if len(ii) == 0:
        return [None] * len(others)

    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    subject_vols = subject.filing.volumes
    a_out = [subject_vols[i].outline for i in ii]
    b_out = [others[owner[j]].filing.volumes[j - first[owner[j]]].outline for j in jj]
    h_dist = horizontal_distances_m(a_out, b_out)
    hit = h_dist <= h_buf[jj]
    ii, jj, h_dist = ii[hit], jj[hit], h_dist[hit]

    results: list[Finding | None] = [None] * len(others)
    if len(ii) == 0:
        return results
    # per offending pair: the common time, or the gap between the windows
    late_start = np.maximum(subject.start_us[ii], start[jj])
    early_end = np.minimum(subject.end_us[ii], end[jj])
    # per other filing (the pairs grouped by it): the widest window, the smallest gaps
    order = np.argsort(owner[jj], kind="stable")
    pair_owner = owner[jj][order]
    first_pair = np.flatnonzero(np.concatenate([[True], pair_owner[1:] != pair_owner[:-1]]))
    columns = zip(
        pair_owner[first_pair].tolist(),
        np.minimum.reduceat(np.minimum(late_start, early_end)[order], first_pair).tolist(),
        np.maximum.reduceat(np.maximum(late_start, early_end)[order], first_pair).tolist(),
        np.minimum.reduceat(h_dist[order], first_pair).tolist(),
        np.minimum.reduceat(v_gap[ii, jj][order], first_pair).tolist(),
        np.minimum.reduceat(t_gap[ii, jj][order], first_pair).tolist(),
        strict=True,
    )
    a = subject.filing.ref()
    for k, lo, hi, h_m, v_m, t_us in columns:
        results[k] = Finding(
            a=a,
            b=others[k].filing.ref(),
            time_start=_EPOCH + int(lo) * _US,
            time_end=_EPOCH + int(hi) * _US,
            horizontal_separation_m=float(h_m),
            vertical_separation_m=float(v_m),
            time_separation_s=float(t_us) / 1e6,
            separation=seps[k],
        )
    return results


def compare(a: Filing, b: Filing, sep: Separation) -> Finding | None:
    """The finding between two filings under `sep`, or None when they are clear."""
    return _compare_many(_prepare(a), [_prepare(b)], [sep])[0]


def detect(
    filing: Filing,
    candidates: Iterable[Filing],
    agreement: Agreement,
    *,
    cache: PreparedCache | None = None,
) -> list[Finding]:
    """Findings of `filing` (as `a`) against other parties' live filings, by candidate id.

    Skips candidates of the same owner, ended ones and the filing itself (same id);
    an ended filing conflicts with nothing. `cache` keeps per-version arrays between
    calls (see `PreparedCache`).
    """
    if not filing.live:
        return []
    others = sorted(
        (c for c in candidates if c.owner != filing.owner and c.live and c.id != filing.id),
        key=lambda c: c.id,
    )
    if not others:
        return []
    prepared = _prepare_many([filing, *others]) if cache is None else cache.get([filing, *others])
    seps = [agreement.separation(filing.kind, c.kind) for c in others]
    found = _compare_many(prepared[0], prepared[1:], seps)
    return [f for f in found if f is not None]


# --- every pair at once (the offline check) --------------------------------------------

#: Smallest meridional and equatorial radii of curvature of WGS84, for degree widening.
_MIN_M_RADIUS_M = 6_335_439.0
_N_RADIUS_M = 6_378_137.0


def _boxes(p: _Prepared, widen_m: float) -> list[tuple[float, float, float, float]]:
    """Lon/lat boxes (west, south, east, north) covering each volume widened by `widen_m`,
    split in two where they pass ±180°."""
    out: list[tuple[float, float, float, float]] = []
    for v, b in zip(p.filing.volumes, p.bound_m, strict=True):
        o = v.outline
        if isinstance(o, Circle):
            lon_lo, lon_hi, lat_lo, lat_hi = o.lon, o.lon, o.lat, o.lat
            extra = o.radius_m
        else:
            ring = np.asarray(o.ring, dtype=np.float64)
            lon_lo, lon_hi = float(ring[:, 0].min()), float(ring[:, 0].max())
            lat_lo, lat_hi = float(ring[:, 1].min()), float(ring[:, 1].max())
            # straight edges in a local plane bow away from the vertices' box in lon/lat
            # by about L²·tan(lat)/8R; pad by that, generously, and 1 % of the size
            span = 2 * float(b)
            tan_lat = math.tan(math.radians(min(89.0, max(abs(lat_lo), abs(lat_hi)))))
            extra = span * span * (tan_lat + 1) / (8 * _MIN_M_RADIUS_M) + 0.01 * span
        pad = (widen_m + extra) * (1 + _REL_SLACK) + _ABS_SLACK_M
        dlat = math.degrees(pad / _MIN_M_RADIUS_M)
        south, north = lat_lo - dlat, lat_hi + dlat
        poleward = max(abs(south), abs(north))
        if poleward >= 89.0:
            out.append((-180.0, max(-90.0, south), 180.0, min(90.0, north)))
            continue
        dlon = math.degrees(pad / (_N_RADIUS_M * math.cos(math.radians(poleward))))
        west, east = lon_lo - dlon, lon_hi + dlon
        if east - west >= 360.0:
            out.append((-180.0, south, 180.0, north))
            continue
        out.append((max(west, -180.0), south, min(east, 180.0), north))
        if west < -180.0:
            out.append((west + 360.0, south, 180.0, north))
        if east > 180.0:
            out.append((-180.0, south, east - 360.0, north))
    return out


def all_conflicts(
    filings: Sequence[Filing], agreement: Agreement, *, same_party: bool = False
) -> list[Finding]:
    """Every conflicting pair among `filings` (live ones, distinct ids; of different
    owners unless `same_party`), `a` before `b` in input order, ordered by (a, b) position.

    A broad phase (an STRtree of lon/lat boxes, each widened by its kind's largest
    horizontal buffer, so two boxes overlap whenever the pair's buffer could be met)
    picks the pairs the exact detector then measures.
    """
    prepared = _prepare_many(filings)
    boxes: list[tuple[float, float, float, float]] = []
    box_owner: list[int] = []
    for i, p in enumerate(prepared):
        if not p.filing.live:
            continue
        rules = agreement.kinds[p.filing.kind]
        for box in _boxes(p, rules.horizontal_buffer_m):
            boxes.append(box)
            box_owner.append(i)
    if not boxes:
        return []
    arr = np.asarray(boxes, dtype=np.float64)
    geoms = shapely.box(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
    tree = shapely.STRtree(geoms)
    q_in, q_tree = tree.query(geoms, predicate="intersects")
    owners = np.asarray(box_owner)
    ia, ib = owners[q_in], owners[q_tree]
    sel = ia < ib
    pairs = np.unique(np.column_stack([ia[sel], ib[sel]]), axis=0)

    findings: list[Finding] = []
    start = 0
    while start < len(pairs):
        i = int(pairs[start, 0])
        stop = start
        while stop < len(pairs) and pairs[stop, 0] == i:
            stop += 1
        subject = prepared[i]
        fa = subject.filing
        others: list[_Prepared] = []
        for j in pairs[start:stop, 1]:
            fb = filings[int(j)]
            if fb.id == fa.id or (fb.owner == fa.owner and not same_party):
                continue
            others.append(prepared[int(j)])
        seps = [agreement.separation(fa.kind, o.filing.kind) for o in others]
        findings += [f for f in _compare_many(subject, others, seps) if f is not None]
        start = stop
    return findings
