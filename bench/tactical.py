"""Benchmark: tactical conflict detection (issue 4) against BlueSky's detectors, and at scale.

1. **BlueSky, same traffic, same run** (`--n`, default 4,000 aircraft). BlueSky's numpy
   `StateBased.detect` and its compiled `cstatebased.detect` (PyPI `bluesky-simulator`,
   the bench extra) and deconflict's `detect` on one snapshot: the conflict pairs of
   each (unordered; BlueSky lists each pair both ways), every difference explained and
   judged, and the time ratios. Traffic: crewed aircraft uniform over a 400 x 400 km
   square around 8°E 47°N, 100 to 250 m/s on uniform tracks; 60 % level at a flight
   level (a multiple of 1,000 ft up to FL400), the rest anywhere from 0 to 12 km
   climbing or descending at up to 15 m/s; plus `--formations` pairs flying together
   (same speed, track and vertical speed, 1 to 8 km apart) and as many "stacked" pairs
   (one above the other, same horizontal motion, closing vertically): zero relative
   horizontal velocity. Zone 5 NM, 1,000 ft, 300 s for every aircraft; every pair is
   checked (BlueSky has no parties), i.e. deconflict with same-party pairs.

   How BlueSky is called: the compiled detector is loaded straight from its extension
   file (`importlib`, it needs nothing but numpy), without importing the `bluesky`
   package; the numpy one needs its package (`bluesky.traffic.asas.statebased` pulls in
   the simulator's traffic and performance models, ~1,400 modules, printing as it loads:
   that output is swallowed) and is called unbound, `StateBased.detect(None, own, own,
   rpz, hpz, dtlookahead)`, since it uses no state. Neither needs `bs.init()`. Inputs
   are a plain namespace with BlueSky's attribute names in its SI units (lat, lon in
   degrees, trk in degrees, gs and vs in m/s, alt in m).

   Judging a difference: the pair's own exact plane (pyproj's ellipsoidal azimuthal
   equidistant projection centred between the two, velocities as the image of one
   second's motion along the geodesic) and the same CPA semantics. BlueSky's geometry
   is a flat earth at the pair's mean latitude with velocities taken as if grid north
   were true north; deconflict's is one plane for the whole picture with velocities
   turned by the convergence of meridians.

2. **Scale.** Full scans (projection of positions and velocities, broad phase, exact
   CPA) of 100,000 drone tracks (50 m, 15 m, 30 s; 100 x 100 km; 0 to 25 m/s; 0 to 150 m
   up, ±3 m/s; 4 parties) and of 10,000 crewed tracks (5 NM, 1,000 ft, 300 s; 1000 x 1000
   km; as in 1.; 4 parties), best and median of `--repeat`; BlueSky's compiled detector on
   the same 10,000 once; and a mixed picture, 100k drones with 200 crewed aircraft over
   their 100 x 100 km, each kind with its own zone. Each scale run is a child process,
   which reports its own peak resident memory (VmHWM) and what it was after the traffic.

3. **Broad phase, measured.** On both scale sets: the swept-box grid (deconflict's)
   at several cell sizes, and scipy's `cKDTree.query_pairs` with the reach
   R + 2 v_max T, each followed by the same exact CPA: time and candidate pairs.

4. **Ingestion** (`--skip-ingest` leaves it out; `--ingest-only` runs only this). First
   the choice of compact format, in this process: parse + validate of the same 100,000
   reports as JSON (orjson, one object per report), NDJSON (orjson per line, the same
   row validation) and Arrow IPC (pyarrow, column-wise); MessagePack is row-wise like
   NDJSON and would add a dependency, so it is not measured. Then through the real HTTP
   endpoint: a server in a child process (uvicorn, SQLite, the default agreement), two
   operators (north and south, batch by batch in turn) posting 100,000 drone tracks (as in
   2.) in batches of `--batch` reports, in `--ingest-rounds` rounds (default 4: the first
   creates the tracks, each next one reports them again about 1 s later), as JSON and as
   Arrow IPC; first with each batch validated, applied to the picture and scanned for
   conflicts involving its tracks (with alerts written) before the answer (scan interval
   0); then with the server's scan cycle (`serve`'s default, `--tactical-scan-interval-s
   1`: the lifespan task scans the tracks reported since the last cycle every second,
   while batches only validate and update the picture). Bodies are encoded before the
   clock starts. Reports/s per format, and the server's resident memory (VmRSS) holding
   100k tracks.

5. **Sustained ingestion** (`--sustained`, run alone): a real `deconflict serve
   --seed-example` process on its default 1 s scan cycle, started through a wrapper that
   times each `Tactical.tick` (one JSON line per scan), `--ingest-tracks` drones (default
   100,000) of three operators flying racetracks (`--leg-s` legs, `--turn-s` semicircle
   turns; 5 to 25 m/s, 0 to 150 m, over 100 x 100 km: some 4,000 conflicts at a time,
   the turns opening and closing hundreds a second), reported by `--clients` concurrent
   clients (default 4), each posting its tracks' state at the moment of posting (time
   stamped then) in batches of `--batch`, as fast as answered. Every track is reported
   once and the scan that opens the first alerts waited for; then `--sustained-s`
   seconds (default 30) per format. Reports/s over the whole window, post latency, the
   scans in it (p50, p99, max; how long each held the ingestion lock, where the server
   says), alerts opened, updated and closed, and the server's resident memory (VmRSS,
   VmHWM). `--server-src DIR` runs the server from another source tree (PYTHONPATH),
   e.g. main's for the "before": ``git archive main | tar -x -C DIR``.

    .venv/bin/python bench/tactical.py            # sections 1-4, ~1 minute on 2 cores
    .venv/bin/python bench/tactical.py --n 1000 --skip-scale
    .venv/bin/python bench/tactical.py --sustained                # section 5, ~3 minutes

Writes the table and the figures to `bench/out/tactical.json` (`tactical_ingest.json` with
`--ingest-only`, `tactical_sustained.json` with `--sustained`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.machinery
import importlib.util
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np

from deconflict.detect import tactical
from deconflict.detect.tactical import PlaneTracks, Tracks, detect_plane, to_plane
from deconflict.geometry import broadphase
from deconflict.geometry.cpa import encounters
from deconflict.geometry.projection import LocalProjection
from deconflict.model.agreement import ProtectedZone

OUT_DIR = Path(__file__).resolve().parent / "out"
CENTRE = (8.0, 47.0)
CREWED = ProtectedZone(9_260.0, 304.8, 300.0)
DRONES = ProtectedZone(50.0, 15.0, 30.0)
FT = 0.3048
Result = dict[str, Any]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- traffic ------------------------------------------------------------------------------


def _square(rng: np.random.Generator, n: int, side_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) uniform over a square of `side_m` around `CENTRE` (placed in the plane)."""
    lon, lat = LocalProjection.at(*CENTRE).inverse(
        rng.uniform(-side_m / 2, side_m / 2, n), rng.uniform(-side_m / 2, side_m / 2, n)
    )
    return lon, lat


def crewed(n: int, side_m: float, seed: int, formations: int = 0) -> Tracks:
    rng = np.random.default_rng(seed)
    lon, lat = _square(rng, n, side_m)
    gs = rng.uniform(100.0, 250.0, n)
    trk = rng.uniform(0.0, 360.0, n)
    level = rng.random(n) < 0.6
    alt = np.where(level, rng.integers(1, 41, n) * 1_000 * FT, rng.uniform(0.0, 12_000.0, n))
    vs = np.where(level, 0.0, rng.uniform(-15.0, 15.0, n))
    # formations (partner = leader's motion, 1-8 km abeam) and stacks (partner above, closing)
    k = min(formations, n // 4)
    for i in range(k):
        lead, wing = 4 * i, 4 * i + 1
        away, dist = float(rng.uniform(0, 360)), float(rng.uniform(1_000, 8_000))
        lon[wing], lat[wing] = _offset(lon[lead], lat[lead], away, dist)
        gs[wing], trk[wing], vs[wing], alt[wing] = (
            gs[lead],
            trk[lead],
            vs[lead],
            alt[lead] + rng.uniform(-200, 200),
        )
        low, high = 4 * i + 2, 4 * i + 3
        lon[high], lat[high] = lon[low], lat[low]
        gs[high], trk[high] = gs[low], trk[low]
        alt[low], vs[low] = 3_000.0, 0.0
        alt[high], vs[high] = 3_000.0 + rng.uniform(500, 2_000), -rng.uniform(5, 15)
    parties = rng.choice(["north", "south", "drones", "shield"], n)
    return Tracks(
        tuple(f"c{i}" for i in range(n)),
        tuple(parties.tolist()),
        ("crewed_flight",) * n,
        lat,
        lon,
        alt,
        gs,
        trk,
        vs,
    )


def drones(n: int, side_m: float, seed: int) -> Tracks:
    rng = np.random.default_rng(seed)
    lon, lat = _square(rng, n, side_m)
    parties = rng.choice(["north", "south", "drones", "shield"], n)
    return Tracks(
        tuple(f"d{i}" for i in range(n)),
        tuple(parties.tolist()),
        ("uas_flight",) * n,
        lat,
        lon,
        rng.uniform(0.0, 150.0, n),
        rng.uniform(0.0, 25.0, n),
        rng.uniform(0.0, 360.0, n),
        rng.uniform(-3.0, 3.0, n),
    )


def _offset(lon: float, lat: float, bearing_deg: float, dist_m: float) -> tuple[float, float]:
    proj = LocalProjection.at(lon, lat)
    x, y = proj.inverse(
        dist_m * math.sin(math.radians(bearing_deg)), dist_m * math.cos(math.radians(bearing_deg))
    )
    return float(x), float(y)


# -- BlueSky ------------------------------------------------------------------------------


def bluesky_compiled() -> ModuleType:
    """`cstatebased` loaded from its extension file, without importing the bluesky package."""
    spec = importlib.util.find_spec("bluesky")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bluesky-simulator is not installed: pip install -e '.[test,bench]'")
    root = Path(next(iter(spec.submodule_search_locations)))
    so = next((root / "traffic" / "asas").glob("cstatebased*.so"))
    loader = importlib.machinery.ExtensionFileLoader("cstatebased", str(so))
    module = importlib.util.module_from_spec(
        importlib.util.spec_from_file_location("cstatebased", so, loader=loader)
    )  # type: ignore[arg-type]
    loader.exec_module(module)
    return module


def bluesky_numpy() -> Callable[..., Any]:
    """`StateBased.detect`, imported the ordinary way (its package prints as it loads)."""
    with contextlib.redirect_stdout(io.StringIO()):
        from bluesky.traffic.asas.statebased import StateBased
    return StateBased.detect  # type: ignore[no-any-return]


def as_bluesky(t: Tracks) -> SimpleNamespace:
    return SimpleNamespace(
        ntraf=len(t),
        id=list(t.track_id),
        lat=np.ascontiguousarray(t.lat_deg),
        lon=np.ascontiguousarray(t.lon_deg),
        trk=np.ascontiguousarray(t.trk_deg),
        gs=np.ascontiguousarray(t.gs_mps),
        alt=np.ascontiguousarray(t.alt_m),
        vs=np.ascontiguousarray(t.vs_mps),
    )


def bluesky_pairs(confpairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(a, b) if a < b else (b, a) for a, b in confpairs}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, list[float]]:
    """`fn()` `repeat` times: its result and the wall-clock seconds of each run (the CPU
    seconds of each go to `CPU_SECONDS`, for a machine shared with other work)."""
    seconds = []
    CPU_SECONDS.clear()
    out = None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - t0)
        CPU_SECONDS.append(time.process_time() - c0)
    return out, seconds


CPU_SECONDS: list[float] = []


def ours(
    t: Tracks, zone: ProtectedZone, *, same_party: bool, cell_m: float | None = None
) -> tactical.Conflicts:
    zones = {k: zone for k in set(t.kind)}
    return detect_plane(to_plane(t, zones)[0], same_party=same_party, cell_m=cell_m)


# -- judging differences --------------------------------------------------------------------


def truth(t: Tracks, i: int, j: int, zone: ProtectedZone) -> Result:
    """The pair in its own exact plane (pyproj AEQD on WGS84 centred between them)."""
    from pyproj import Geod, Proj

    geod = Geod(ellps="WGS84")
    az, _, dist = geod.inv(t.lon_deg[i], t.lat_deg[i], t.lon_deg[j], t.lat_deg[j])
    mid_lon, mid_lat, _ = geod.fwd(t.lon_deg[i], t.lat_deg[i], az, dist / 2)
    proj = Proj(proj="aeqd", lat_0=mid_lat, lon_0=mid_lon, ellps="WGS84")
    state = []
    for k in (i, j):
        x, y = proj(t.lon_deg[k], t.lat_deg[k])
        lon1, lat1, _ = geod.fwd(t.lon_deg[k], t.lat_deg[k], t.trk_deg[k], t.gs_mps[k])
        x1, y1 = proj(lon1, lat1)
        state.append((x, y, t.alt_m[k], x1 - x, y1 - y, t.vs_mps[k]))
    a, b = state
    e = encounters(
        *(np.array([b[m] - a[m]]) for m in range(6)), zone.radius_m, zone.half_height_m, zone.lookahead_s
    )
    rel_speed = math.hypot(
        t.gs_mps[i] * math.sin(math.radians(t.trk_deg[i]))
        - t.gs_mps[j] * math.sin(math.radians(t.trk_deg[j])),
        t.gs_mps[i] * math.cos(math.radians(t.trk_deg[i]))
        - t.gs_mps[j] * math.cos(math.radians(t.trk_deg[j])),
    )
    return {
        "conflict": bool(e.conflict[0]),
        "los": bool(e.los[0]),
        "d_cpa_m": float(e.d_cpa_m[0]),
        "t_in_s": float(e.t_in_s[0]),
        "t_out_s": float(e.t_out_s[0]),
        "distance_m": float(dist),
        "bluesky_rel_speed_mps": rel_speed,
    }


def explain(who: str, pair: tuple[str, str], t: Tracks, zone: ProtectedZone) -> Result:
    """Why the two sides differ on `pair`, and the truth."""
    idx = {tid: k for k, tid in enumerate(t.track_id)}
    i, j = idx[pair[0]], idx[pair[1]]
    tr = truth(t, i, j, zone)
    dz = abs(float(t.alt_m[i] - t.alt_m[j]))
    level = t.vs_mps[i] == t.vs_mps[j]
    if tr["bluesky_rel_speed_mps"] == 0.0 and who == "missed by compiled":
        why = "zero relative velocity: cstatebased computes tcpa = 0/0 (NaN) and drops the pair"
    elif level and abs(dz - zone.half_height_m) < 1e-6:
        why = (
            "level at adjacent flight levels, 1,000 ft apart up to ft-to-m float rounding (1e-12 m): BlueSky "
            "counts those whose rounding falls inside (and StateBased, clamping a vertical rate of 0 to "
            "1e-6 m/s, those a hair outside too); deconflict compares altitudes to the micrometre: separated"
        )
    elif abs(tr["t_in_s"] - tr["t_out_s"]) < 2.0:
        gap = tr["t_in_s"] - tr["t_out_s"]
        why = f"horizontal and vertical intervals {'miss' if gap >= 0 else 'overlap'} by {abs(gap):.3f} s"
    elif abs(tr["d_cpa_m"] - zone.radius_m) < 0.03 * zone.radius_m:
        why = f"miss distance within 3% of the radius (true d_cpa {tr['d_cpa_m']:.1f} m)"
    elif abs(tr["t_in_s"] - zone.lookahead_s) < 2.0 or abs(tr["t_out_s"]) < 2.0:
        why = f"at the look-ahead's edge (true t_in {tr['t_in_s']:.1f} s, t_out {tr['t_out_s']:.1f} s)"
    else:
        why = "geometry (flat earth, unturned velocities) beyond the edge cases above"
    return {"pair": list(pair), "who": who, "true_conflict": tr["conflict"], "why": why, **tr}


def compare(
    t: Tracks, zone: ProtectedZone, *, numpy_pairs: set[Any], compiled_pairs: set[Any], our_pairs: set[Any]
) -> Result:
    diffs = []
    for pair in sorted(numpy_pairs - our_pairs):
        diffs.append(explain("numpy only", pair, t, zone))
    for pair in sorted(our_pairs - numpy_pairs):
        diffs.append(explain("deconflict only (vs numpy)", pair, t, zone))
    for pair in sorted(our_pairs - compiled_pairs):
        diffs.append(explain("missed by compiled", pair, t, zone))
    for pair in sorted(compiled_pairs - our_pairs):
        diffs.append(explain("compiled only", pair, t, zone))
    for d in diffs:
        ours_says = tuple(d["pair"]) in our_pairs
        d["right"] = "deconflict" if ours_says == d["true_conflict"] else "BlueSky"
    return {"differences": diffs}


def vs_bluesky(args: argparse.Namespace) -> Result:
    t = crewed(args.n, 400_000.0, args.seed, args.formations)
    n = len(t)
    own = as_bluesky(t)
    rpz, hpz, look = (
        np.full(n, CREWED.radius_m),
        np.full(n, CREWED.half_height_m),
        np.full(n, CREWED.lookahead_s),
    )
    c_detect = bluesky_compiled().detect
    np_detect = bluesky_numpy()
    log(f"BlueSky numpy StateBased on {n:,} aircraft ...")
    np_out, np_s = timed(lambda: np_detect(None, own, own, rpz, hpz, look), args.repeat_bluesky)
    np_cpu = min(CPU_SECONDS)
    log(f"  {min(np_s):.2f} s; compiled cstatebased ...")
    c_out, c_s = timed(lambda: c_detect(own, own, rpz, hpz, look), args.repeat_bluesky)
    c_cpu = min(CPU_SECONDS)
    log(f"  {min(c_s):.2f} s; deconflict ...")
    our, our_s = timed(lambda: ours(t, CREWED, same_party=True), args.repeat)
    our_cpu = min(CPU_SECONDS)
    our_pairs = {(t.track_id[a], t.track_id[b]) for a, b in zip(our.a, our.b, strict=True)}
    our_pairs = {(a, b) if a < b else (b, a) for a, b in our_pairs}
    numpy_pairs, compiled_pairs = bluesky_pairs(np_out[0]), bluesky_pairs(c_out[0])
    our_los = {(t.track_id[a], t.track_id[b]) for a, b, los in zip(our.a, our.b, our.los, strict=True) if los}
    result = {
        "n": n,
        "pairs": {"numpy": len(numpy_pairs), "compiled": len(compiled_pairs), "deconflict": len(our_pairs)},
        "los_pairs": {
            "numpy": len(bluesky_pairs(np_out[1])),
            "compiled": len(bluesky_pairs(c_out[1])),
            "deconflict": len(our_los),
        },
        "seconds": {
            "numpy": min(np_s),
            "compiled": min(c_s),
            "deconflict": min(our_s),
            "deconflict_median": statistics.median(our_s),
        },
        "cpu_seconds": {"numpy": np_cpu, "compiled": c_cpu, "deconflict": our_cpu},
        **compare(t, CREWED, numpy_pairs=numpy_pairs, compiled_pairs=compiled_pairs, our_pairs=our_pairs),
    }
    return result


# -- scale (child processes) ----------------------------------------------------------------


def status_mb(field: str) -> float:
    """A size from /proc/self/status: VmRSS (now) or VmHWM (peak). Not `ru_maxrss`, which a
    child process inherits from its parent across exec (here, BlueSky's 4,000² matrices)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return math.nan


def mixed(seed: int) -> Tracks:
    """100k drones and 200 crewed aircraft (as in 1.) over the same 100 x 100 km."""
    d, c = drones(100_000, 100_000.0, seed), crewed(200, 100_000.0, seed + 1)
    fields = ("lat_deg", "lon_deg", "alt_m", "gs_mps", "trk_deg", "vs_mps")
    arrays = (np.concatenate([getattr(d, f), getattr(c, f)]) for f in fields)
    return Tracks(d.track_id + c.track_id, d.party + c.party, d.kind + c.kind, *arrays)


def mixed_run(args: argparse.Namespace) -> Result:
    """Each kind with its own zone: every drone is swept over the crewed look-ahead too."""
    t = mixed(args.seed)
    zones = {"uas_flight": DRONES, "crewed_flight": CREWED}
    found, seconds = timed(lambda: detect_plane(to_plane(t, zones)[0]), args.repeat)
    return {
        "tracks": len(t),
        "conflicts": len(found),
        "los": int(found.los.sum()),
        "best_s": min(seconds),
        "median_s": statistics.median(seconds),
        "best_cpu_s": min(CPU_SECONDS),
        "rss_peak_mb": status_mb("VmHWM"),
    }


def child(which: str, args: argparse.Namespace) -> Result:
    """One scale run in this process: timings, broad-phase comparison, memory."""
    if which == "mixed":
        return mixed_run(args)
    if which == "drones":
        t, zone = drones(100_000, 100_000.0, args.seed), DRONES
    else:
        t, zone = crewed(10_000, 1_000_000.0, args.seed), CREWED
    after_traffic = status_mb("VmRSS")
    found, seconds = timed(lambda: ours(t, zone, same_party=False), args.repeat)
    out: Result = {
        "tracks": len(t),
        "conflicts": len(found),
        "los": int(found.los.sum()),
        "best_s": min(seconds),
        "median_s": statistics.median(seconds),
        "best_cpu_s": min(CPU_SECONDS),
        "rss_after_traffic_mb": after_traffic,
    }
    # the phases, once
    zones = {k: zone for k in set(t.kind)}
    t0 = time.perf_counter()
    plane, _ = to_plane(t, zones)
    t1 = time.perf_counter()
    detect_plane(plane)
    t2 = time.perf_counter()
    out["projection_s"], out["detect_plane_s"] = t1 - t0, t2 - t1
    out["rss_peak_mb"] = status_mb("VmHWM")  # before the comparisons below, which hold millions of pairs
    out["broad_phase"] = broad_phase(plane, zone)
    if which == "crewed" and not args.skip_bluesky:
        c_detect = bluesky_compiled().detect
        n = len(t)
        _, c_s = timed(
            lambda: c_detect(
                as_bluesky(t),
                as_bluesky(t),
                np.full(n, zone.radius_m),
                np.full(n, zone.half_height_m),
                np.full(n, zone.lookahead_s),
            ),
            1,
        )
        out["bluesky_compiled_s"] = c_s[0]
    return out


def broad_phase(p: PlaneTracks, zone: ProtectedZone) -> Result:
    """Grid (several cells) vs cKDTree reach, each with the same exact CPA after it."""
    from scipy.spatial import cKDTree

    rows: Result = {}
    pad_r = p.radius_m - p.radius_m.min() / 2
    pad_h = p.half_height_m - p.half_height_m.min() / 2
    boxes = tactical._swept(p, np.arange(len(p)), 0.0, zone.lookahead_s, pad_r, pad_h)
    base = broadphase.suggested_cell_m(boxes) / broadphase.CELL_PER_EXTENT
    for factor in (0.5, 0.8, 1.0, 1.5, 2.0):
        (i, _), s = timed(lambda f=factor: broadphase.overlapping_pairs(boxes, base * f), 3)  # type: ignore[misc]
        rows[f"grid cell {factor:g} x mean box extent"] = {"s": min(s), "candidates": len(i)}
    for crowded, label in ((math.inf, "no time slices"), (0.0, f"{tactical.SLICES} time slices")):
        saved, tactical.CROWDED = tactical.CROWDED, crowded
        full, s = timed(lambda: detect_plane(p, same_party=True), 3)
        tactical.CROWDED = saved
        rows[f"grid, {label} + exact CPA"] = {"s": min(s), "conflicts": len(full)}
    full, s = timed(lambda: detect_plane(p, same_party=True), 3)
    rows["grid, default + exact CPA"] = {"s": min(s), "conflicts": len(full)}
    vmax = float(np.hypot(p.vx_mps, p.vy_mps).max())
    reach = zone.radius_m + 2 * vmax * zone.lookahead_s

    def kdtree() -> int:
        xy = np.stack([p.x_m, p.y_m], axis=1)
        pairs = cKDTree(xy).query_pairs(reach, output_type="ndarray")
        a, b = pairs[:, 0], pairs[:, 1]
        e = encounters(
            p.x_m[b] - p.x_m[a],
            p.y_m[b] - p.y_m[a],
            p.z_m[b] - p.z_m[a],
            p.vx_mps[b] - p.vx_mps[a],
            p.vy_mps[b] - p.vy_mps[a],
            p.vz_mps[b] - p.vz_mps[a],
            zone.radius_m,
            zone.half_height_m,
            zone.lookahead_s,
        )
        rows["kdtree candidates"] = len(a)
        return int(e.conflict.sum())

    found, s = timed(kdtree, 1 if len(p) > 50_000 else 3)
    rows[f"cKDTree reach {reach:,.0f} m + exact CPA"] = {"s": min(s), "conflicts": found}
    return rows


def scale(which: str, args: argparse.Namespace) -> Result:
    cmd = [sys.executable, __file__, "--child", which, "--repeat", str(args.repeat), "--seed", str(args.seed)]
    if args.skip_bluesky:
        cmd.append("--skip-bluesky")
    log(f"scale run: {which} (child process)")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- report ---------------------------------------------------------------------------------


def report(results: Result) -> str:
    start, end = results["load_average_at_start"], results["load_average_at_end"]
    lines = [
        f"load average (1, 5, 15 min) at start {start[0]:.1f} {start[1]:.1f} {start[2]:.1f}, "
        f"at end {end[0]:.1f} {end[1]:.1f} {end[2]:.1f} (2 cores)",
        "",
    ]
    b = results.get("bluesky")
    if b:
        s, cpu, pairs, los = b["seconds"], b["cpu_seconds"], b["pairs"], b["los_pairs"]
        columns = (("numpy", 18), ("compiled", 14), ("deconflict", 12))
        lines += [
            f"same traffic, {b['n']:,} aircraft (5 NM, 1,000 ft, 300 s), every pair:",
            f"  {'':<28}{'numpy StateBased':>18}{'cstatebased':>14}{'deconflict':>12}",
            f"  {'conflict pairs':<28}" + "".join(f"{pairs[k]:>{w},}" for k, w in columns),
            f"  {'loss-of-separation pairs':<28}" + "".join(f"{los[k]:>{w},}" for k, w in columns),
            f"  {'seconds (best)':<28}" + "".join(f"{s[k]:>{w}.4f}" for k, w in columns),
            f"  {'CPU seconds (best)':<28}" + "".join(f"{cpu[k]:>{w}.4f}" for k, w in columns),
            f"  {'deconflict is faster by':<28}{s['numpy'] / s['deconflict']:>17.0f}x"
            f"{s['compiled'] / s['deconflict']:>13.1f}x",
            f"  {'... in CPU seconds':<28}{cpu['numpy'] / cpu['deconflict']:>17.0f}x"
            f"{cpu['compiled'] / cpu['deconflict']:>13.1f}x",
            f"  differences ({len(b['differences'])}):",
        ]
        groups: dict[tuple[str, str, str], list[str]] = {}
        for d in b["differences"]:
            key = (
                d["who"],
                d["right"],
                d["why"].split(" (true")[0].split(" by ")[0] + (" by < 2 s" if " by " in d["why"] else ""),
            )
            groups.setdefault(key, []).append("-".join(d["pair"]))
        for (who, right, why), pairs in groups.items():
            lines.append(f"    {len(pairs)} {who}; right: {right}; {why}:")
            lines.append(f"      {' '.join(pairs)}")
        lines.append("")
    m = results.get("mixed")
    if m:
        lines.append(
            f"mixed: 100k drones + 200 crewed aircraft over 100 x 100 km, each kind its zone: full scan "
            f"{m['best_s'] * 1e3:.0f} ms best, {m['best_cpu_s'] * 1e3:.0f} ms CPU; "
            f"{m['conflicts']:,} conflicts, {m['los']:,} LoS; peak RSS {m['rss_peak_mb']:,.0f} MB"
        )
        lines.append("")
    for which, label, target in (
        ("drones", "100k drone tracks (50 m, 15 m, 30 s; 100 x 100 km)", 0.5),
        ("crewed", "10k crewed tracks (5 NM, 1,000 ft, 300 s; 1000 x 1000 km)", 0.1),
    ):
        r = results.get(which)
        if not r:
            continue
        lines.append(
            f"{label}: full scan {r['best_s'] * 1e3:.0f} ms best, {r['median_s'] * 1e3:.0f} ms median, "
            f"{r['best_cpu_s'] * 1e3:.0f} ms CPU "
            f"(target <= {target * 1e3:.0f} ms); projection {r['projection_s'] * 1e3:.0f} ms, detection "
            f"{r['detect_plane_s'] * 1e3:.0f} ms; {r['conflicts']:,} conflicts, {r['los']:,} LoS; "
            f"peak RSS {r['rss_peak_mb']:,.0f} MB (after traffic {r['rss_after_traffic_mb']:,.0f} MB)"
        )
        if "bluesky_compiled_s" in r:
            lines.append(
                f"  BlueSky cstatebased on the same: {r['bluesky_compiled_s']:.2f} s "
                f"({r['bluesky_compiled_s'] / r['best_s']:.0f}x slower)"
            )
        for name, v in r["broad_phase"].items():
            if isinstance(v, dict):
                extra = ", ".join(f"{k} {x:,}" for k, x in v.items() if k != "s")
                lines.append(f"  {name:<48} {v['s'] * 1e3:8.1f} ms  {extra}")
            else:
                lines.append(f"  {name:<48} {v:>11,}")
        lines.append("")
    return "\n".join(lines)


# -- ingestion -----------------------------------------------------------------------------


def _report_rows(t: Tracks, when: float) -> list[dict[str, Any]]:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")
    return [
        {"track": tid, "time": stamp, "lat": la, "lon": lo, "alt_m": al, "gs_mps": gs, "trk_deg": tr,
         "vs_mps": vs, "kind": "uas_flight"}
        for tid, la, lo, al, gs, tr, vs in zip(
            t.track_id, t.lat_deg.tolist(), t.lon_deg.tolist(), t.alt_m.tolist(), t.gs_mps.tolist(),
            (t.trk_deg % 360.0).tolist(), t.vs_mps.tolist(), strict=True,
        )
    ]  # fmt: skip


def _arrow_body(t: Tracks, when: float) -> bytes:
    import pyarrow as pa

    n = len(t)
    table = pa.table({
        "track": pa.array(t.track_id, pa.string()),
        "time": pa.array(np.full(n, int(when * 1e6)), pa.int64()).cast(pa.timestamp("us", "UTC")),
        "lat": t.lat_deg, "lon": t.lon_deg, "alt_m": t.alt_m, "gs_mps": t.gs_mps,
        "trk_deg": t.trk_deg % 360.0, "vs_mps": t.vs_mps, "kind": pa.array(["uas_flight"] * n, pa.string()),
    })  # fmt: skip
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def parse_formats(t: Tracks, repeat: int) -> Result:
    """Parse + validate of the same reports in each candidate format, in this process."""
    import orjson

    from deconflict.service import reports as rp

    when = time.time()
    rows = _report_rows(t, when)
    bodies = {
        "json": orjson.dumps({"reports": rows}),
        "ndjson": b"\n".join(orjson.dumps(r) for r in rows),
        "arrow_ipc": _arrow_body(t, when),
    }
    parse: dict[str, Callable[[bytes], Any]] = {
        "json": lambda b: rp.from_json(orjson.loads(b)),
        "ndjson": lambda b: rp.from_json({"reports": [orjson.loads(x) for x in b.split(b"\n")]}),
        "arrow_ipc": rp.from_arrow,
    }
    out: Result = {}
    for name, body in bodies.items():

        def run(name: str = name, body: bytes = body) -> None:
            rp.validate(parse[name](body), now_s=when + 1, kinds=["uas_flight"])

        _, seconds = timed(run, repeat)
        out[name] = {"bytes": len(body), "best_s": min(seconds), "reports_per_s": len(t) / min(seconds)}
    return out


def serve_child(directory: str, scan_interval_s: float) -> None:
    """A real server for the ingestion bench: prints its port and a token, then serves."""
    import uvicorn

    from deconflict import agreements
    from deconflict.api.app import create_app
    from deconflict.model import Role
    from deconflict.service import Services
    from deconflict.store.sqlite import SqliteStore

    store = SqliteStore(Path(directory) / "bench.sqlite3")
    services = Services.build(store, agreements.load())
    services.tactical.scan_interval_s = scan_interval_s
    _, token = services.parties.add("north", role=Role.OPERATOR)
    _, token_south = services.parties.add("south", role=Role.OPERATOR)
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    print(json.dumps({"port": port, "tokens": [token, token_south]}), flush=True)
    app = create_app(services, sth_interval_s=None, tick_interval_s=None)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def ingest(args: argparse.Namespace) -> Result:
    import tempfile

    import httpx
    import orjson

    from deconflict.service.reports import ARROW_MEDIA_TYPE

    n, batch = args.ingest_tracks, args.batch
    t = drones(n, 100_000.0, args.seed)
    log(f"ingestion: parse + validate of {n:,} reports per format")
    results: Result = {"tracks": n, "batch": batch, "parse": parse_formats(t, 3)}
    for fmt, interval in (("json", 0.0), ("arrow_ipc", 0.0), ("json", 1.0), ("arrow_ipc", 1.0)):
        with tempfile.TemporaryDirectory() as d:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve-child", d, "--scan-interval-s", str(interval)],
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert proc.stdout is not None
                hello = json.loads(proc.stdout.readline())
                url = f"http://127.0.0.1:{hello['port']}"
                clients = [
                    httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
                    for token in hello["tokens"]
                ]
                client = clients[0]
                for _ in range(100):
                    try:
                        client.get("/healthz")
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                rates = []
                for rnd in range(args.ingest_rounds):
                    when = time.time()
                    bodies = []
                    for start in range(0, n, batch):
                        part = t.rows(start, min(start + batch, n))
                        if fmt == "json":
                            bodies.append(
                                (orjson.dumps({"reports": _report_rows(part, when)}), "application/json")
                            )
                        else:
                            bodies.append((_arrow_body(part, when), ARROW_MEDIA_TYPE))
                    log(f"ingestion: {fmt}, round {rnd + 1}: {len(bodies)} batches of {batch:,}")
                    t0 = time.perf_counter()
                    alerts = 0
                    for k, (body, media) in enumerate(bodies):  # north and south in turn
                        r = clients[k % 2].post("/v1/tracks", content=body, headers={"content-type": media})
                        r.raise_for_status()
                        alerts += len(r.json()["alerts"])
                    elapsed = time.perf_counter() - t0
                    rates.append({"reports_per_s": n / elapsed, "seconds": elapsed, "alert_changes": alerts,
                                  "body_mb": sum(len(b) for b, _ in bodies) / 2**20})  # fmt: skip
                    time.sleep(1.1)  # the next round's reports are newer
                results[f"{fmt}@{interval:g}"] = {
                    "format": fmt, "scan_interval_s": interval, "rounds": rates,
                    "server_rss_mb": _rss_mb(proc.pid),
                    "tracks_held": client.get("/v1/tracks").json()["count"],
                }  # fmt: skip
                for c in clients:
                    c.close()
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    return results


def ingest_report(r: Result) -> str:
    lines = [f"ingestion, {r['tracks']:,} drone reports (parse + validate in process, best of 3):"]
    for name, v in r["parse"].items():
        lines.append(f"  {name:<10} {v['reports_per_s']:>12,.0f} reports/s  ({v['bytes'] / 2**20:.1f} MiB)")
    j, a = r["parse"]["json"]["reports_per_s"], r["parse"]["arrow_ipc"]["reports_per_s"]
    lines.append(f"  Arrow IPC parses + validates {a / j:.1f}x faster than JSON")
    lines.append(f"through POST /v1/tracks, batches of {r['batch']:,}:")
    for v in r.values():
        if not isinstance(v, dict) or "rounds" not in v:
            continue
        fmt = v["format"]
        target = 50_000 if fmt == "json" else 200_000
        when = (
            "after every batch, before its answer"
            if not v["scan_interval_s"]
            else f"every {v['scan_interval_s']:g} s by the server's cycle"
        )
        lines.append(f"  {fmt}, scan {when}:")
        rounds = ", ".join(
            f"round {i + 1} {x['reports_per_s']:,.0f}/s ({x['body_mb']:.1f} MiB, "
            f"{x['alert_changes']} alert changes in the answers)"
            for i, x in enumerate(v["rounds"])
        )
        lines.append(f"    {rounds} (target >= {target:,}/s)")
        lines.append(f"    server RSS holding {v['tracks_held']:,} tracks: {v['server_rss_mb']:,.0f} MB")
    return "\n".join(lines)


# -- sustained ingestion (a real `deconflict serve`, concurrent clients, many scan cycles) ----


def racetracks(n: int, side_m: float, seed: int, leg_s: float, turn_s: float) -> dict[str, Any]:
    """Drones flying racetracks (survey legs and semicircle turns, like a holding pattern):
    centre of the first leg's start uniform over a square of `side_m`, legs `leg_s` long
    in time, turns `turn_s`, speed 5 to 25 m/s, level at 0 to 150 m, at a random phase."""
    rng = np.random.default_rng(seed)
    return {
        "x": rng.uniform(-side_m / 2, side_m / 2, n), "y": rng.uniform(-side_m / 2, side_m / 2, n),
        "heading": rng.uniform(0.0, 2 * np.pi, n), "v": rng.uniform(5.0, 25.0, n),
        "alt": rng.uniform(0.0, 150.0, n), "phase": rng.uniform(0.0, 2 * (leg_s + turn_s), n),
        "leg_s": leg_s, "turn_s": turn_s,
    }  # fmt: skip


def racetrack_at(r: dict[str, Any], t: float, rows: slice) -> tuple[np.ndarray, ...]:
    """Plane east, north (m), ground speed (m/s) and track (deg) of `rows` at time `t` (s)."""
    leg, turn = r["leg_s"], r["turn_s"]
    v, th = r["v"][rows], r["heading"][rows]
    u = (r["phase"][rows] + t) % (2 * (leg + turn))
    length, rad = v * leg, v * turn / np.pi
    # in the pattern's own frame: x along the first leg, y to its left; right-hand turns
    phi1 = np.pi * np.clip(u - leg, 0, turn) / turn
    phi2 = np.pi * np.clip(u - 2 * leg - turn, 0, turn) / turn
    back = np.clip(u - leg - turn, 0, leg)
    seg = np.select([u < leg, u < leg + turn, u < 2 * leg + turn], [0, 1, 2], 3)
    x = np.choose(seg, [v * u, length + rad * np.sin(phi1), length - v * back, -rad * np.sin(phi2)])
    y = np.choose(seg, [0 * u, -rad + rad * np.cos(phi1), -2 * rad, -rad - rad * np.cos(phi2)])
    vx = np.choose(seg, [v, v * np.cos(phi1), -v, -v * np.cos(phi2)])
    vy = np.choose(seg, [0 * v, -v * np.sin(phi1), 0 * v, v * np.sin(phi2)])
    s, c = np.sin(th), np.cos(th)  # first leg's unit vector (east, north) = (s, c); left = (-c, s)
    east, north = r["x"][rows] + x * s - y * c, r["y"][rows] + x * c + y * s
    ve, vn = vx * s - vy * c, vx * c + vy * s
    return east, north, np.hypot(ve, vn), np.degrees(np.arctan2(ve, vn)) % 360.0


def _sustained_body(
    r: dict[str, Any], ids: list[str], rows: slice, t0: float, fmt: str, proj: LocalProjection
) -> bytes:
    """One batch: `rows` as they are now (time stamped now), in `fmt`."""
    now = time.time()
    east, north, gs, trk = racetrack_at(r, now - t0, rows)
    lon, lat = proj.inverse(east, north)
    alt = r["alt"][rows]
    n = len(ids)
    if fmt == "json":
        from datetime import UTC, datetime

        import orjson

        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return orjson.dumps({"reports": [
            {"track": tid, "time": stamp, "lat": la, "lon": lo, "alt_m": al, "gs_mps": g, "trk_deg": tr,
             "vs_mps": 0.0, "kind": "uas_flight"}
            for tid, la, lo, al, g, tr in zip(
                ids, lat.round(7).tolist(), lon.round(7).tolist(), alt.round(2).tolist(),
                gs.round(2).tolist(), (trk.round(2) % 360.0).tolist(), strict=True,
            )
        ]})  # fmt: skip
    import pyarrow as pa

    table = pa.table({
        "track": pa.array(ids, pa.string()),
        "time": pa.array(np.full(n, int(now * 1e6)), pa.int64()).cast(pa.timestamp("us", "UTC")),
        "lat": lat, "lon": lon, "alt_m": alt, "gs_mps": gs, "trk_deg": trk, "vs_mps": np.zeros(n),
        "kind": pa.array(["uas_flight"] * n, pa.string()),
    })  # fmt: skip
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def serve_timed(stats: str, argv: list[str]) -> None:
    """`deconflict serve` (argv) in this process, each scan cycle timed: one JSON line
    per `Tactical.tick` to `stats` (end time, seconds, alert changes by kind, and the
    seconds it held the ingestion lock where the service reports it)."""
    import collections

    import deconflict
    from deconflict.cli import main as cli_main
    from deconflict.service.tactical import Tactical

    out = open(stats, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    out.write(json.dumps({"deconflict": deconflict.__file__}) + "\n")
    untimed = Tactical.tick

    def tick(self: Tactical, now: Any = None) -> Any:
        t0 = time.perf_counter()
        done = untimed(self, now)
        seconds = time.perf_counter() - t0
        changes = collections.Counter(c["change"] for c in done.alerts)
        locked = getattr(done, "locked_s", None)
        row = {"at": time.time(), "s": seconds, "locked_s": seconds if locked is None else locked,
               "tracks": done.tracks, **changes}  # fmt: skip
        out.write(json.dumps(row) + "\n")
        return done

    Tactical.tick = tick  # type: ignore[method-assign]
    raise SystemExit(cli_main(argv))


def _status(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(line.split()[1]) / 1024
    return out


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def sustained_run(args: argparse.Namespace, fmt: str, r: dict[str, Any]) -> Result:
    """One format: a fresh `deconflict serve --seed-example` (scan cycle 1 s), every track
    reported once, the first (opening) scan waited for, then `--sustained-s` seconds of
    `--clients` concurrent clients posting their tracks' current state as fast as answered."""
    import tempfile
    import threading

    import httpx

    from deconflict.service.reports import ARROW_MEDIA_TYPE

    media = "application/json" if fmt == "json" else ARROW_MEDIA_TYPE
    n, batch, k = args.ingest_tracks, args.batch, args.clients
    proj = LocalProjection.at(*CENTRE)
    parties = ["north", "south", "drones"]
    with tempfile.TemporaryDirectory() as d:
        stats = Path(d) / "scans.jsonl"
        port = _free_port()
        env = dict(os.environ)
        if args.server_src:
            env["PYTHONPATH"] = args.server_src
        argv = ["serve", "--data-dir", d, "--port", str(port), "--seed-example", "--log-level", "warning",
                "--tactical-scan-interval-s", "1"]  # fmt: skip
        with open(Path(d) / "server.err", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve-timed", str(stats), "--", *argv],
                stdout=subprocess.DEVNULL, stderr=err, env=env,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            tokens = json.loads((Path(d) / "example-tokens.json").read_text())
            # client c reports tracks c, c + k, c + 2k, ... as party parties[c % 3]
            share = [np.arange(c, n, k) for c in range(k)]
            t0 = time.time()
            clients, traffic = [], []
            for c in range(k):
                token = tokens[parties[c % len(parties)]]
                client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300)
                mine = share[c]
                traffic.append({key: v[mine] if isinstance(v, np.ndarray) else v for key, v in r.items()})
                batches = [
                    ([f"c{c}d{i}" for i in mine[b : b + batch].tolist()], slice(b, b + batch))
                    for b in range(0, len(mine), batch)
                ]
                clients.append((client, batches))

            def post(c: int, ids: list[str], rows: slice) -> dict[str, Any]:
                body = _sustained_body(traffic[c], ids, rows, t0, fmt, proj)
                resp = clients[c][0].post("/v1/tracks", content=body, headers={"content-type": media})
                if resp.status_code != 200:
                    raise RuntimeError(f"POST /v1/tracks: {resp.status_code} {resp.text[:500]}")
                return resp.json()  # type: ignore[no-any-return]

            log(f"sustained, {fmt}: {n:,} tracks, {k} clients; every track reported once")
            for c, (_, batches) in enumerate(clients):
                for ids, rows in batches:
                    post(c, ids, rows)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the first cycle that scanned them all (it opens the alerts)
                lines = [json.loads(x) for x in stats.read_text().splitlines()[1:]]
                if any(x["tracks"] >= n and x.get("opened", 0) > 0 for x in lines):
                    break
                time.sleep(0.2)
            log(f"sustained, {fmt}: opening scan done; {args.sustained_s:g} s of concurrent posting")
            counts: list[dict[str, Any]] = [
                {"reports": 0, "posts": 0, "ignored": 0, "latency": []} for _ in range(k)
            ]
            barrier = threading.Barrier(k + 1)
            stop_at = [0.0]

            def feed(c: int) -> None:
                mine = counts[c]
                barrier.wait()
                while True:
                    for ids, rows in clients[c][1]:
                        if time.monotonic() >= stop_at[0]:
                            mine["end"] = time.monotonic()
                            return
                        s0 = time.monotonic()
                        done = post(c, ids, rows)
                        mine["latency"].append(time.monotonic() - s0)
                        mine["reports"] += done["accepted"] + done["ignored_stale"]
                        mine["ignored"] += done["ignored_stale"]
                        mine["posts"] += 1

            threads = [threading.Thread(target=feed, args=(c,)) for c in range(k)]
            for th in threads:
                th.start()
            start_wall = time.time()
            stop_at[0] = time.monotonic() + args.sustained_s
            start = time.monotonic()
            barrier.wait()
            for th in threads:
                th.join()
            end = max(x["end"] for x in counts)
            end_wall = start_wall + (end - start)
            status = _status(proc.pid)
            for client, _ in clients:
                client.close()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        lines = [json.loads(x) for x in stats.read_text().splitlines()]
        where = lines[0]["deconflict"]
        scans = [x for x in lines[1:] if start_wall <= x["at"] <= end_wall and x["tracks"] > 0]
        errors = (Path(d) / "server.err").read_text()[-2000:]
    reports = sum(x["reports"] for x in counts)
    latency = [v for x in counts for v in x["latency"]]
    return {
        "format": fmt, "deconflict": where, "seconds": end - start, "reports": reports,
        "reports_per_s": reports / (end - start), "posts": sum(x["posts"] for x in counts),
        "ignored_stale": sum(x["ignored"] for x in counts),
        "post_latency_s": {"p50": _pct(latency, 50), "p99": _pct(latency, 99)},
        "scans": len(scans),
        "scan_s": {"p50": _pct([x["s"] for x in scans], 50), "p99": _pct([x["s"] for x in scans], 99),
                   "max": max((x["s"] for x in scans), default=math.nan)},
        "lock_s": {"p50": _pct([x["locked_s"] for x in scans], 50),
                   "p99": _pct([x["locked_s"] for x in scans], 99)},
        "alerts": {c: sum(x.get(c, 0) for x in scans) for c in ("opened", "updated", "closed")},
        "server_rss_mb": status.get("VmRSS", math.nan), "server_peak_rss_mb": status.get("VmHWM", math.nan),
        "server_errors": errors,
    }  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sustained(args: argparse.Namespace) -> Result:
    r = racetracks(args.ingest_tracks, 100_000.0, args.seed, args.leg_s, args.turn_s)
    out: Result = {
        "tracks": args.ingest_tracks, "batch": args.batch, "clients": args.clients,
        "window_s": args.sustained_s, "leg_s": args.leg_s, "turn_s": args.turn_s, "runs": [],
    }  # fmt: skip
    for fmt in args.formats.split(","):
        out["runs"].append(sustained_run(args, fmt, r))
    return out


def sustained_report(s: Result) -> str:
    lines = [
        f"sustained ingestion: `deconflict serve` (scan cycle 1 s), {s['tracks']:,} drone tracks on "
        f"racetracks ({s['leg_s']:g} s legs, {s['turn_s']:g} s turns), {s['clients']} concurrent clients, "
        f"batches of {s['batch']:,}, {s['window_s']:g} s after the opening scan:"
    ]
    for x in s["runs"]:
        target = 50_000 if x["format"] == "json" else 200_000
        a, sc, lk, lat = x["alerts"], x["scan_s"], x["lock_s"], x["post_latency_s"]
        lines += [
            f"  {x['format']:<9} {x['reports_per_s']:>9,.0f} reports/s over {x['seconds']:.1f} s "
            f"({x['reports']:,} reports, {x['posts']:,} posts; target >= {target:,}/s); "
            f"post p50 {lat['p50'] * 1e3:.0f} ms, p99 {lat['p99'] * 1e3:.0f} ms",
            f"            {x['scans']} scans: p50 {sc['p50']:.2f} s, p99 {sc['p99']:.2f} s, "
            f"max {sc['max']:.2f} s; "
            f"ingestion lock held p50 {lk['p50'] * 1e3:.0f} ms, p99 {lk['p99'] * 1e3:.0f} ms; alerts opened "
            f"{a['opened']:,}, updated {a['updated']:,}, closed {a['closed']:,}; server RSS "
            f"{x['server_rss_mb']:,.0f} MB (peak {x['server_peak_rss_mb']:,.0f} MB)",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=4_000, help="aircraft in the BlueSky comparison (default 4,000)")
    ap.add_argument("--formations", type=int, default=25, help="formation and stacked pairs among them")
    ap.add_argument("--repeat", type=int, default=7, help="timed runs of deconflict per measurement")
    ap.add_argument("--repeat-bluesky", type=int, default=2, help="timed runs of each BlueSky detector")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-bluesky", action="store_true", help="no BlueSky (scale runs only)")
    ap.add_argument("--skip-scale", action="store_true", help="no 100k / 10k scale runs")
    ap.add_argument("--skip-ingest", action="store_true", help="no ingestion through the HTTP endpoint")
    ap.add_argument("--ingest-only", action="store_true", help="only the ingestion measurements")
    ap.add_argument("--ingest-tracks", type=int, default=100_000, help="tracks posted (default 100,000)")
    ap.add_argument("--batch", type=int, default=10_000, help="reports per HTTP batch (default 10,000)")
    ap.add_argument(
        "--ingest-rounds", type=int, default=4, help="rounds of every track's report, 1 s apart (default 4)"
    )
    ap.add_argument("--sustained", action="store_true", help="only the sustained ingestion bench (5.)")
    ap.add_argument("--sustained-s", type=float, default=30.0, help="sustained window, seconds (default 30)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients in the sustained bench")
    ap.add_argument("--formats", default="json,arrow_ipc", help="sustained bench formats (default both)")
    ap.add_argument("--leg-s", type=float, default=90.0, help="sustained traffic: racetrack legs, seconds")
    ap.add_argument("--turn-s", type=float, default=15.0, help="sustained traffic: racetrack turns, seconds")
    ap.add_argument(
        "--server-src", help="sustained bench: run the server from this source tree (PYTHONPATH), e.g. main's"
    )
    ap.add_argument("--serve-timed", help=argparse.SUPPRESS)
    ap.add_argument("serve_argv", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--child", choices=["drones", "crewed", "mixed"], help=argparse.SUPPRESS)
    ap.add_argument("--serve-child", help=argparse.SUPPRESS)
    ap.add_argument("--scan-interval-s", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    if args.serve_child:
        serve_child(args.serve_child, args.scan_interval_s)
        return
    if args.serve_timed:
        serve_timed(args.serve_timed, args.serve_argv)
        return
    if args.sustained:
        results: Result = {"seed": args.seed, "load_average_at_start": os.getloadavg()}
        results["sustained"] = sustained(args)
        results["load_average_at_end"] = os.getloadavg()
        table = sustained_report(results["sustained"])
        start, end = results["load_average_at_start"], results["load_average_at_end"]
        table = f"load average at start {start[0]:.1f}, at end {end[0]:.1f} (2 cores)\n" + table
        print("\n" + table)
        OUT_DIR.mkdir(exist_ok=True)
        out = OUT_DIR / "tactical_sustained.json"
        out.write_text(json.dumps({**results, "table": table.splitlines()}, indent=2, default=str))
        log(f"wrote {out}")
        return
    results = {"seed": args.seed, "load_average_at_start": os.getloadavg()}
    if args.ingest_only:
        args.skip_bluesky = args.skip_scale = True
    if not args.skip_bluesky:
        results["bluesky"] = vs_bluesky(args)
    if not args.skip_ingest:
        results["ingest"] = ingest(args)
    if not args.skip_scale:
        results["drones"] = scale("drones", args)
        results["crewed"] = scale("crewed", args)
        results["mixed"] = scale("mixed", args)
    results["load_average_at_end"] = os.getloadavg()
    table = report(results)
    if "ingest" in results:
        table += "\n" + ingest_report(results["ingest"])
    print("\n" + table)
    OUT_DIR.mkdir(exist_ok=True)
    out = OUT_DIR / ("tactical_ingest.json" if args.ingest_only else "tactical.json")
    out.write_text(json.dumps({**results, "table": table.splitlines()}, indent=2, default=str))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
