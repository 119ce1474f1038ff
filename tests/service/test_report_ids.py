"""The ids of a batch of position reports are checked in one pass of the pattern over
them all (`reports._bad_ids`); checked here against the obvious row-by-row loop."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from deconflict.service.reports import _ICAO, _ID, MAX_ERRORS, _bad_ids


def reference(values: list[Any], pattern: re.Pattern[str], *, optional: bool) -> list[int]:
    bad = [
        i for i, v in enumerate(values)
        if not (v is None and optional) and (not isinstance(v, str) or pattern.match(v) is None)
    ]  # fmt: skip
    return bad[:MAX_ERRORS]


value = st.one_of(
    st.none(),
    st.integers(),
    st.text(alphabet="aZ09._:@-", min_size=0, max_size=66),
    st.text(alphabet="aF09\n /é", max_size=8),
    st.sampled_from(["4b1805", "4B18zz", "N1\n", "\nN1", "x" * 64, "x" * 65]),
)


@given(st.lists(value, max_size=30), st.booleans(), st.sampled_from([_ID, _ICAO]))
def test_one_pass_finds_the_rows_the_loop_finds(
    values: list[Any], optional: bool, pattern: re.Pattern[str]
) -> None:
    got = _bad_ids(values, "track", pattern, "rule", optional=optional)
    assert [e.field for e in got] == [
        f"reports[{i}].track" for i in reference(values, pattern, optional=optional)
    ]


def test_the_usual_batch_is_clean() -> None:
    assert _bad_ids([f"N{i}" for i in range(10_000)], "track", _ID, "rule", optional=False) == []
    assert _bad_ids([None] * 10, "icao24", _ICAO, "rule", optional=True) == []
