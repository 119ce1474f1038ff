"""The rule that decides when an open tactical alert is written again (`material`):
loss of separation begun or ended, the miss distance moved by a tenth of the zone's
radius, the CPA (or the loss of separation) moved by a tenth of the time left until it,
at least a second; figures compared as instants, so time passing alone changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from deconflict.model.alert import AlertKind, TacticalAlert
from deconflict.service.alerts import D_CPA_FRACTION, T_FRACTION, T_MIN_S, Found, material

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
RADIUS_M = 50.0


def stored(figures: dict[str, Any], kind: AlertKind = AlertKind.CONFLICT) -> TacticalAlert:
    return TacticalAlert("a1", kind, "north/N1", "north", "south/S1", "south", None, T0, T0, None, figures)


def found(figures: dict[str, Any], kind: AlertKind = AlertKind.CONFLICT) -> Found:
    return Found(("north/N1", "south/S1"), kind, "north/N1", "north", "south/S1", "south", None, figures,
                 (RADIUS_M, 15.0))  # fmt: skip


def fig(
    t_cpa: float | None = 20.0, d_cpa: float = 10.0, t_in: float | None = 15.0, los: bool = False
) -> dict[str, Any]:
    return {"t_cpa_s": t_cpa, "d_cpa_m": d_cpa, "t_in_s": t_in, "t_out_s": 25.0, "los": los}


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_same_encounter_seen_later_is_not_material() -> None:
    # 5 s on, the same CPA instant (20 s after T0 is 15 s after now), same distance
    assert not material(stored(fig()), found(fig(t_cpa=15.0, t_in=10.0)), later(5))
    # the t_out change alone never counts
    assert not material(stored(fig()), found({**fig(t_cpa=15.0, t_in=10.0), "t_out_s": 99.0}), later(5))


def test_loss_of_separation_begun_or_ended_is_material() -> None:
    assert material(stored(fig()), found(fig(t_cpa=15.0, t_in=-1.0, los=True)), later(5))
    assert material(stored(fig(los=True, t_in=-3.0)), found(fig(los=False, t_in=-8.0, t_cpa=15.0)), later(5))


def test_miss_distance_against_a_tenth_of_the_radius() -> None:
    step = D_CPA_FRACTION * RADIUS_M  # 5 m
    assert not material(stored(fig(d_cpa=10.0)), found(fig(d_cpa=10.0 + step * 0.9)), T0)
    assert material(stored(fig(d_cpa=10.0)), found(fig(d_cpa=10.0 + step * 1.1)), T0)
    assert material(stored(fig(d_cpa=10.0)), found(fig(d_cpa=10.0 - step * 1.1)), T0)


def test_times_against_a_tenth_of_the_time_left_and_at_least_a_second() -> None:
    # 20 s left: the threshold is max(1, 2) = 2 s
    assert not material(stored(fig(t_cpa=20.0)), found(fig(t_cpa=21.9)), T0)
    assert material(stored(fig(t_cpa=20.0)), found(fig(t_cpa=22.5)), T0)
    # 4 s left: the threshold is the floor, 1 s
    assert not material(stored(fig(t_cpa=4.0, t_in=2.0)), found(fig(t_cpa=4.9, t_in=2.0)), T0)
    assert material(stored(fig(t_cpa=4.0, t_in=2.0)), found(fig(t_cpa=5.2, t_in=2.0)), T0)
    # the time separation is lost counts the same way
    assert material(stored(fig(t_in=15.0)), found(fig(t_in=17.0)), T0)
    # a time that becomes unbounded, or bounded
    assert material(stored(fig(t_in=15.0)), found(fig(t_in=None)), T0)
    assert material(stored(fig(t_in=None)), found(fig(t_in=15.0)), T0)


def test_an_unannounced_track_is_updated_on_any_move() -> None:
    where = {"lat": 33.0, "lon": 35.0, "alt_m": 60.0}
    k = AlertKind.UNANNOUNCED
    assert not material(stored(where, k), found(dict(where), k), later(1))
    assert material(stored(where, k), found({**where, "lon": 35.0001}, k), later(1))


def reference(old: dict[str, Any], old_at_s: float, new: dict[str, Any], now_s: float, radius: float) -> bool:
    """The rule written out plainly, on absolute instants."""
    if old["los"] != new["los"]:
        return True
    if abs(new["d_cpa_m"] - old["d_cpa_m"]) > radius / 10:
        return True
    for name in ("t_cpa_s", "t_in_s"):
        if (old[name] is None) != (new[name] is None):
            return True
        if old[name] is not None:
            was, now = old_at_s + old[name], now_s + new[name]
            if abs(was - now) > max(1.0, (now - now_s) / 10 if now > now_s else 0.0):
                return True
    return False


times = st.one_of(st.none(), st.floats(-60, 300))


@given(
    st.builds(fig, times, st.floats(0, 200), times, st.booleans()),
    st.builds(fig, times, st.floats(0, 200), times, st.booleans()),
    st.floats(0, 30),
)
def test_the_rule_agrees_with_its_plain_reference(
    old: dict[str, Any], new: dict[str, Any], dt: float
) -> None:
    assert (T_FRACTION, T_MIN_S, D_CPA_FRACTION) == (0.1, 1.0, 0.1)  # the reference's numbers
    now = later(dt)
    assert material(stored(old), found(new), now) == reference(
        old, T0.timestamp(), new, now.timestamp(), RADIUS_M
    )


@given(st.builds(fig, times, st.floats(0, 200), times, st.booleans()), st.floats(0, 30))
def test_time_passing_alone_is_never_material(old: dict[str, Any], dt: float) -> None:
    shifted = {**old, **{k: None if old[k] is None else old[k] - dt for k in ("t_cpa_s", "t_in_s")}}
    assert not material(stored(old), found(shifted), later(dt))
