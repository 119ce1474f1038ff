"""A real ADS-B day (the traffic library's Switzerland sample), if the `real-data` extra is installed."""

from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path

import pytest

from deconflict import agreements
from deconflict.detect.recording import ReplayStats, replay
from deconflict.model.agreement import ProtectedZone

pytest.importorskip("traffic", reason="the real-data extra (traffic) is not installed")

# bench/switzerland.py turns the sample into a recording; loaded by path (bench/ is no package)
_spec = importlib.util.spec_from_file_location(
    "bench_switzerland", Path(__file__).resolve().parents[2] / "bench" / "switzerland.py"
)
assert _spec is not None and _spec.loader is not None
switzerland = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(switzerland)
FT, load = switzerland.FT, switzerland.load


def events(half_height_m: float) -> tuple[list[dict[str, object]], ReplayStats]:
    with contextlib.redirect_stdout(io.StringIO()):
        table = load()
    zones = {k: ProtectedZone(9_260.0, half_height_m, 300.0) for k in agreements.load().kinds}
    stats = ReplayStats()
    found = list(
        replay(table, zones, "crewed_flight", same_party=True, scan_s=10.0, stale_s=30.0, stats=stats)
    )
    return found, stats


def test_switzerland_losses_of_separation_are_adjacent_flight_levels_a_few_25_ft_steps_apart() -> None:
    found, stats = events(1_000 * FT)
    assert stats.reports > 130_000 and stats.ignored_stale == 0
    los = [e for e in found if e["event"] == "los_started"]
    assert len(los) > 100
    # every loss of separation opens inside a conflict that was already, or at once, open
    opened = {(e["a"], e["b"]) for e in found if e["event"] == "conflict_opened"}
    assert all((e["a"], e["b"]) in opened for e in los)
    # one event per ongoing conflict: opened and closed alternate for each pair
    state: dict[tuple[object, object], bool] = {}
    for e in found:
        key = (e["a"], e["b"])
        if e["event"] == "conflict_opened":
            assert not state.get(key)
            state[key] = True
        elif e["event"] == "conflict_closed":
            assert state.get(key)
            state[key] = False
    # with 900 ft instead of 1,000 ft, none is left: no two aircraft within 5 NM came closer than that
    found, _ = events(900 * FT)
    assert [e for e in found if e["event"] == "los_started"] == []
