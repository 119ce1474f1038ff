"""The H3 cells of outlines, computed once per outline and kept in a bounded cache.

Covers are pure functions of an outline (and of the agreement's largest horizontal
buffer), and the slowest part of preparing a filing: the service computes them
(both from one ring walk, `cell_covers`) before taking the write lock, and an
unchanged volume (a state change, an update that keeps it) finds its cover here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from deconflict.geometry.cells import cell_covers
from deconflict.model import Outline, Volume4D


@dataclass(frozen=True, slots=True)
class Cover:
    own: frozenset[int]  # cells the outline touches: what the store indexes
    search: frozenset[int]  # cells within the largest buffer of it: what a check queries


class Covers:
    def __init__(self, reach_m: float, max_entries: int = 20_000) -> None:
        self.reach_m = reach_m
        self._max = max_entries
        self._items: OrderedDict[Outline, Cover] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, outline: Outline) -> Cover:
        with self._lock:
            hit = self._items.get(outline)
            if hit is not None:
                self._items.move_to_end(outline)
                return hit
        cover = Cover(*cell_covers(outline, self.reach_m))
        with self._lock:
            self._items[outline] = cover
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        return cover

    def of(self, volumes: Sequence[Volume4D]) -> list[Cover]:
        return [self.get(v.outline) for v in volumes]
