from __future__ import annotations

from deconflict.geometry.cells import search_cells, volume_cells
from deconflict.model import Circle, Polygon
from deconflict.service.covers import Covers


def test_cover_is_computed_once_and_equals_the_cells() -> None:
    covers = Covers(reach_m=9_260.0, max_entries=2)
    c = Circle(35.0, 33.0, 2_000.0)
    first = covers.get(c)
    assert first.own == volume_cells(c)
    assert first.search == search_cells(c, 9_260.0)
    assert first.own < first.search
    assert covers.get(Circle(35.0, 33.0, 2_000.0)) is first  # equal outline: a hit


def test_cache_is_bounded_least_recently_used_first() -> None:
    covers = Covers(reach_m=0.0, max_entries=2)
    a, b, c = (Circle(35.0 + i, 33.0, 500.0) for i in range(3))
    ca = covers.get(a)
    covers.get(b)
    assert covers.get(a) is ca  # a is now the most recent
    covers.get(c)  # evicts b
    assert covers.get(a) is ca
    assert len(covers._items) == 2 and b not in covers._items


def test_a_polygon_cover_equals_the_cells() -> None:
    covers = Covers(reach_m=18_520.0)
    square = Polygon(((35.0, 33.0), (35.3, 33.0), (35.3, 33.2), (35.0, 33.2)))
    cover = covers.get(square)
    assert cover.own == volume_cells(square)
    assert cover.search == search_cells(square, 18_520.0)
