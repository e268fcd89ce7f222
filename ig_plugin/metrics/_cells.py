"""How a metric cuts X into cells that are kept or replaced together (numpy only).

A cell is a position of an input with all its channels: a pixel of an image ``(N, H, W, C)``, a
step of a sequence ``(N, T, C)``, a value of a table ``(N, D)``. Keras is channel-last, so the
last axis of an input of rank 3 or more is its channels. With a ``grid_size`` an image's pixels are
grouped into ``grid_size x grid_size`` cells instead (MuFidelity's super-pixels). The cells of
several inputs are numbered one after the other, in X's order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _positions(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The position axes of one sample's features: all but the channels (the last axis) for
    inputs with channels, every axis for a table's row."""
    return shape[:-1] if len(shape) >= 2 else shape


def _grid_cells(height: int, width: int, grid_size: int) -> np.ndarray:
    """``(H, W)`` cell numbers of a ``grid_size x grid_size`` grid, nearest-neighbour: pixel
    ``(h, w)`` lies in row ``h * grid_size // H`` and column ``w * grid_size // W``."""
    if grid_size > min(height, width):
        raise ValueError(
            f"Received an invalid value for `grid_size`, expected at most the images' height "
            f"and width ({height}, {width}): every cell must hold a pixel. Received: "
            f"grid_size={grid_size}"
        )
    rows = np.arange(height) * grid_size // height
    columns = np.arange(width) * grid_size // width
    cells: np.ndarray = rows[:, None] * grid_size + columns[None, :]
    return cells


class Cells:
    """The cells of X's inputs.

    Parameters
    ----------
    shapes
        One sample's shape per input (X's arrays without the batch axis).
    grid_size
        Group each image's pixels (inputs of shape ``(H, W, C)``) into a square grid of cells;
        None, or for other inputs: every position is a cell.
    """

    def __init__(self, shapes: Sequence[tuple[int, ...]], grid_size: int | None = None) -> None:
        self._shapes = tuple(tuple(shape) for shape in shapes)
        self._ids: list[np.ndarray] = []  # per input: each position's cell, numbered across X
        self._counts: list[int] = []
        offset = 0
        for shape in self._shapes:
            positions = _positions(shape)
            if grid_size is not None and len(shape) == 3:
                ids = _grid_cells(positions[0], positions[1], grid_size)
                count = grid_size * grid_size
            else:
                count = int(np.prod(positions, dtype=np.int64))
                ids = np.arange(count).reshape(positions)
            self._ids.append(ids + offset)
            self._counts.append(count)
            offset += count
        self.n_cells = offset

    def sums(self, attributions: Sequence[np.ndarray]) -> np.ndarray:
        """Each sample's attributions summed per cell: ``(N, n_cells)`` float64."""
        n_rows = attributions[0].shape[0]
        parts = []
        for values, ids, count in zip(attributions, self._ids, self._counts, strict=True):
            per_position = values.reshape(n_rows, ids.size, -1).sum(axis=-1, dtype=np.float64)
            if ids.size == count:  # every position its own cell, numbered in order
                parts.append(per_position)
                continue
            local = (ids - ids.min()).ravel()
            sums = np.zeros((n_rows, count))
            for cell in range(count):  # few cells (a grid): one masked sum each
                sums[:, cell] = per_position[:, local == cell].sum(axis=1)
            parts.append(sums)
        return np.concatenate(parts, axis=1)

    def masks(self, chosen: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per input, a bool mask that broadcasts against ``(n, *shape)`` from ``chosen``, the
        cells chosen in each of n rows ``(n, n_cells)``: a position is chosen with its cell, all
        its channels together."""
        masks = []
        for shape, ids in zip(self._shapes, self._ids, strict=True):
            mask = chosen[:, ids.ravel()].reshape(len(chosen), *ids.shape)
            masks.append(mask[..., np.newaxis] if len(shape) >= 2 else mask)
        return tuple(masks)

    def blend(
        self,
        keep: Sequence[np.ndarray],
        put: Sequence[np.ndarray],
        chosen: np.ndarray,
        samples: np.ndarray,
    ) -> tuple[np.ndarray, ...]:
        """Points from samples ``samples`` of ``keep`` with the ``chosen`` cells (one row of
        cells per point) taken from the same samples of ``put``."""
        return tuple(
            np.where(mask, to[samples], kept[samples])
            for mask, kept, to in zip(self.masks(chosen), keep, put, strict=True)
        )
