"""Closest point of approach of pairs of constant-velocity tracks in the local plane. Pure numpy.

The semantics of BlueSky's state-based detection (`StateBased`): for each pair, `b`
relative to `a`, the horizontal closest point of approach of the relative velocity
gives the times the pair is closer than the radius (`t_cpa ± dt`); the vertical
crossing of ± the half-height gives a second interval; a conflict is where both
intervals overlap inside [0, look-ahead].

Boundaries: the protected zone is open. A pair exactly `radius_m` apart (or exactly
`half_height_m`) has not lost separation, and the pair's time inside the zone is
the open interval (t_in, t_out): a conflict needs t_in < t_out, t_out > 0 and
t_in < look-ahead, i.e. some instant of [0, look-ahead] strictly inside.

Altitudes are compared to the micrometre (`LEVEL_TOLERANCE_M`): reported altitudes come
in steps (25 ft, flight levels of 100 ft) and in feet, so two aircraft at adjacent flight
levels are exactly the standard 1,000 ft apart only up to float rounding after conversion
to metres, a hair either side; they are separated, whichever side the rounding falls.

Zero relative velocity (formation flight, an aircraft above another at the same
speed) is handled, not divided by: a pair whose relative horizontal speed is below
`STILL_MPS` keeps its distance for ever (inside for all time, or never), and likewise
vertically below `STILL_VS_MPS`; the interval is then unbounded (±inf).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["LEVEL_TOLERANCE_M", "STILL_MPS", "STILL_VS_MPS", "Encounters", "encounters"]

_F64 = NDArray[np.float64]

#: a relative horizontal speed below this (m/s) is zero: the pair keeps its distance
STILL_MPS = 1e-6
#: a relative vertical speed below this (m/s) is zero
STILL_VS_MPS = 1e-9
#: vertical distances within this of the half-height (m) count as exactly the half-height
LEVEL_TOLERANCE_M = 1e-6


@dataclass(frozen=True, slots=True, eq=False)
class Encounters:
    """Per pair: the prediction. Times in seconds from now, distances in metres.

    `t_cpa_s`/`d_cpa_m` are the horizontal closest approach (0 and the present
    distance when the pair keeps its distance); `t_in_s`/`t_out_s` bound the time
    inside the protected zone (negative `t_in_s`: inside already; ±inf: for ever).
    `los` is loss of separation now, which is always also a `conflict`.
    """

    conflict: NDArray[np.bool_]
    los: NDArray[np.bool_]
    t_in_s: _F64
    t_out_s: _F64
    t_cpa_s: _F64
    d_cpa_m: _F64


def encounters(
    dx_m: ArrayLike,
    dy_m: ArrayLike,
    dz_m: ArrayLike,
    dvx_mps: ArrayLike,
    dvy_mps: ArrayLike,
    dvz_mps: ArrayLike,
    radius_m: ArrayLike,
    half_height_m: ArrayLike,
    lookahead_s: ArrayLike,
) -> Encounters:
    """Predict pairs from the position and velocity of `b` relative to `a` (x east,
    y north, z up; metres and m/s); the zone's figures broadcast against them."""
    dx, dy, dz = (np.asarray(v, dtype=np.float64) for v in (dx_m, dy_m, dz_m))
    dvx, dvy, dvz = (np.asarray(v, dtype=np.float64) for v in (dvx_mps, dvy_mps, dvz_mps))
    radius = np.asarray(radius_m, dtype=np.float64)
    half = np.asarray(half_height_m, dtype=np.float64) - LEVEL_TOLERANCE_M
    lookahead = np.asarray(lookahead_s, dtype=np.float64)

    # horizontal: |d + v t| < R
    v2 = dvx * dvx + dvy * dvy
    moving = v2 > STILL_MPS * STILL_MPS
    v2_safe = np.where(moving, v2, 1.0)
    d2_now = dx * dx + dy * dy
    t_cpa = np.where(moving, -(dx * dvx + dy * dvy) / v2_safe, 0.0)
    cross = dx * dvy - dy * dvx  # |d x v| / |v| is the miss distance, without cancellation
    d_cpa2 = np.where(moving, cross * cross / v2_safe, d2_now)
    r2 = radius * radius
    horizontal = d_cpa2 < r2
    dt = np.sqrt(np.maximum(r2 - d_cpa2, 0.0) / v2_safe)
    h_in = np.where(moving, t_cpa - dt, -np.inf)
    h_out = np.where(moving, t_cpa + dt, np.inf)

    # vertical: |dz + dvz t| < H
    climbing = np.abs(dvz) > STILL_VS_MPS
    dvz_safe = np.where(climbing, dvz, 1.0)
    cross_lo = (-half - dz) / dvz_safe
    cross_hi = (half - dz) / dvz_safe
    level_inside = np.abs(dz) < half
    v_in = np.where(climbing, np.minimum(cross_lo, cross_hi), np.where(level_inside, -np.inf, np.inf))
    v_out = np.where(climbing, np.maximum(cross_lo, cross_hi), np.where(level_inside, np.inf, -np.inf))

    t_in = np.maximum(h_in, v_in)
    t_out = np.minimum(h_out, v_out)
    los = (d2_now < r2) & level_inside
    conflict = (horizontal & (t_in < t_out) & (t_out > 0.0) & (t_in < lookahead)) | los
    return Encounters(conflict, los, t_in, t_out, t_cpa, np.sqrt(d_cpa2))
