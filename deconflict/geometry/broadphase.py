"""Which axis-aligned boxes overlap: grid hashing in numpy, no Python loop per box.

Each box is entered in every cell of a grid (`cell_m` square, `layer_m` high) that
it touches; boxes sharing a cell are candidates; a candidate pair is kept when the
boxes overlap in x, y and z and the cell is the one holding the lowest corner of
their overlap, so every overlapping pair comes out exactly once. Layers matter for
aircraft: level traffic at different flight levels never shares a cell. Used by the
tactical detector on the boxes swept by each track over the look-ahead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CELL_PER_EXTENT",
    "Boxes",
    "overlapping_pairs",
    "overlapping_pairs_between",
    "suggested_cell_m",
    "suggested_layer_m",
]

_F64 = NDArray[np.float64]
_I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class Boxes:
    """Axis-aligned boxes, metres: one contiguous array per bound."""

    x_lo: _F64
    y_lo: _F64
    z_lo: _F64
    x_hi: _F64
    y_hi: _F64
    z_hi: _F64

    def __len__(self) -> int:
        return len(self.x_lo)


def suggested_cell_m(boxes: Boxes) -> float:
    """A cell about as wide as a typical box: each box then sits in a few cells and
    few unrelated boxes share one (bench/tactical.py measures the choice)."""
    if len(boxes) == 0:
        return 1.0
    extent = np.maximum(boxes.x_hi - boxes.x_lo, boxes.y_hi - boxes.y_lo)
    return max(float(np.mean(extent)) * CELL_PER_EXTENT, 1.0)


def suggested_layer_m(boxes: Boxes) -> float:
    """The grid's height: about a typical box's, unless that would make fewer than
    `MIN_LAYERS` layers (then one layer holds everything: the grid is flat)."""
    if len(boxes) == 0:
        return 1.0
    span = float(boxes.z_hi.max() - boxes.z_lo.min())
    layer = max(float(np.mean(boxes.z_hi - boxes.z_lo)) * CELL_PER_EXTENT, 1.0)
    return layer if span / layer >= MIN_LAYERS else span + 1.0


#: the grid cell over the mean box extent (measured: 0.75 to 1 is fastest)
CELL_PER_EXTENT = 0.8
#: fewer layers than this and the grid is flat (2D): measured, 100k drones (8 layers of
#: 48 m) are found faster flat; 10k aircraft (22 layers of 1 km) with 3x fewer candidates
MIN_LAYERS = 10
#: the suggested grid is coarsened (doubled) until the boxes touch at most this many cells
#: each on average: boxes of very different sizes (a still drone's, a jet's 5-minute sweep)
#: would otherwise put the big ones in millions of small cells
MAX_CELLS_PER_BOX = 32.0


def _suggested(sets: list[Boxes], cell_m: float | None, layer_m: float | None) -> tuple[float, float]:
    """The grid for `sets`: the given sizes, or sizes suggested for all their boxes together
    and coarsened until `MAX_CELLS_PER_BOX` holds."""
    if cell_m is not None and layer_m is not None:
        return cell_m, layer_m
    every = Boxes(*(np.concatenate([getattr(b, f) for b in sets]) for f in Boxes.__slots__))
    cell = cell_m or suggested_cell_m(every)
    layer = layer_m or suggested_layer_m(every)
    w, h, d = every.x_hi - every.x_lo, every.y_hi - every.y_lo, every.z_hi - every.z_lo
    for _ in range(64):
        touched = float(np.sum((w / cell + 1) * (h / cell + 1) * (d / layer + 1)))
        if touched <= MAX_CELLS_PER_BOX * len(every):
            break
        cell = cell if cell_m is not None else cell * 2
        layer = layer if layer_m is not None else layer * 2
    return cell, layer


def _ranges(starts: _I64, counts: _I64) -> tuple[_I64, _I64]:
    """For ranges [starts[k], starts[k] + counts[k]): (k, position) of every member."""
    total = int(counts.sum())
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, starts[owner] + offset


class _Grid:
    """Cells of `cell` x `cell` x `layer` metres; a cell's key is one integer."""

    def __init__(self, sets: list[Boxes], cell_m: float, layer_m: float) -> None:
        self.origin = (
            min(float(b.x_lo.min()) for b in sets),
            min(float(b.y_lo.min()) for b in sets),
            min(float(b.z_lo.min()) for b in sets),
        )
        self.size = (float(cell_m), float(cell_m), float(layer_m))
        self.rows = max(int(self._index(b.y_hi, 1).max()) for b in sets) + 1
        self.layers = max(int(self._index(b.z_hi, 2).max()) for b in sets) + 1

    def _index(self, v: _F64, dim: int) -> _I64:
        return np.floor((v - self.origin[dim]) / self.size[dim]).astype(np.int64)

    def key(self, x: _F64, y: _F64, z: _F64) -> _I64:
        return (self._index(x, 0) * self.rows + self._index(y, 1)) * self.layers + self._index(z, 2)

    def entries(self, boxes: Boxes) -> tuple[_I64, _I64]:
        """(cell key, box) for every cell each box touches."""
        c0, r0, l0 = self._index(boxes.x_lo, 0), self._index(boxes.y_lo, 1), self._index(boxes.z_lo, 2)
        wide = self._index(boxes.x_hi, 0) - c0 + 1
        tall = self._index(boxes.y_hi, 1) - r0 + 1
        deep = self._index(boxes.z_hi, 2) - l0 + 1
        box, k = _ranges(np.zeros(len(boxes), dtype=np.int64), wide * tall * deep)
        d = deep[box]
        t = tall[box]
        col = c0[box] + k // (d * t)
        row = r0[box] + (k // d) % t
        return (col * self.rows + row) * self.layers + l0[box] + k % d, box


def _keep(a: _I64, b: _I64, cell: _I64, one: Boxes, two: Boxes, grid: _Grid) -> tuple[_I64, _I64]:
    """The candidate pairs whose boxes overlap, reported by the cell holding the lowest
    corner of their overlap; each test narrows the pairs the next one looks at."""
    z_lo = np.maximum(one.z_lo[a], two.z_lo[b])
    ok = z_lo <= np.minimum(one.z_hi[a], two.z_hi[b])
    a, b, cell, z_lo = a[ok], b[ok], cell[ok], z_lo[ok]
    x_lo = np.maximum(one.x_lo[a], two.x_lo[b])
    ok = x_lo <= np.minimum(one.x_hi[a], two.x_hi[b])
    a, b, cell, z_lo, x_lo = a[ok], b[ok], cell[ok], z_lo[ok], x_lo[ok]
    y_lo = np.maximum(one.y_lo[a], two.y_lo[b])
    ok = y_lo <= np.minimum(one.y_hi[a], two.y_hi[b])
    ok &= grid.key(x_lo, y_lo, z_lo) == cell
    return a[ok], b[ok]


def overlapping_pairs(
    boxes: Boxes, cell_m: float | None = None, layer_m: float | None = None
) -> tuple[_I64, _I64]:
    """Every pair (i, j), i < j, of overlapping boxes (closed: touching overlaps)."""
    if len(boxes) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    grid = _Grid([boxes], *_suggested([boxes], cell_m, layer_m))
    key, box = grid.entries(boxes)
    order = np.argsort(key)
    key, box = key[order], box[order]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    ends = np.append(starts[1:], len(key))
    here = np.arange(len(key), dtype=np.int64)
    first, second = _ranges(here + 1, np.repeat(ends, ends - starts) - here - 1)
    a, b = _keep(box[first], box[second], key[first], boxes, boxes, grid)
    return np.minimum(a, b), np.maximum(a, b)


def overlapping_pairs_between(
    one: Boxes, two: Boxes, cell_m: float | None = None, layer_m: float | None = None
) -> tuple[_I64, _I64]:
    """Every pair (i of `one`, j of `two`) of overlapping boxes."""
    if len(one) == 0 or len(two) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    grid = _Grid([one, two], *_suggested([one, two], cell_m, layer_m))
    key_one, box_one = grid.entries(one)
    key_two, box_two = grid.entries(two)
    order = np.argsort(key_two)
    key_two, box_two = key_two[order], box_two[order]
    lo = np.searchsorted(key_two, key_one, side="left")
    hi = np.searchsorted(key_two, key_one, side="right")
    owner, at = _ranges(lo, hi - lo)
    return _keep(box_one[owner], box_two[at], key_one[owner], one, two, grid)
