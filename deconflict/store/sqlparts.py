"""Small pieces of SQL text every part of the shared store layer builds statements with."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

__all__ = ["CHUNK", "chunks", "placeholders"]

T = TypeVar("T")

CHUNK = 500
"""Most values bound to one statement (SQLite allows 32,766; keep lists modest)."""


def placeholders(n: int) -> str:
    """``?,?,…`` for `n` values (engines rewrite ``?`` for their driver)."""
    return ",".join("?" * n)


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `CHUNK`, for ``IN (…)`` lists."""
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]
