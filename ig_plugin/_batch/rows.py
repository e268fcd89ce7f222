"""Rows in and out of the workers: the command line's batches, and the result put back in order.

The batches are the same with and without Ray (rows ``[k * B, (k + 1) * B)``, with their row ids),
and the results are placed by row id, so the order Ray returns them in does not matter.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ig_plugin._batch.worker import ATTRIBUTIONS, DELTA, PREDICTION, REFUSED, TARGET

#: Column names of the command line's batches.
ROW_ID, FEATURES, TARGETS = "row_id", "features", "target"

#: The output file's arrays, by the worker column they come from.
OUTPUT_NAMES = {
    ATTRIBUTIONS: "attributions",
    DELTA: "deltas",
    PREDICTION: "predictions",
    TARGET: "target",
}


def batches(
    data: np.ndarray, targets: np.ndarray | None, batch_size: int
) -> Iterator[dict[str, np.ndarray]]:
    """Consecutive batches of ``batch_size`` rows with their row ids (and targets, if any)."""
    for first in range(0, len(data), batch_size):
        stop = min(first + batch_size, len(data))
        batch = {
            ROW_ID: np.arange(first, stop, dtype=np.int64),
            FEATURES: np.asarray(data[first:stop]),
        }
        if targets is not None:
            batch[TARGETS] = targets[first:stop]
        yield batch


class Collector:
    """Puts explained batches in their rows' places and checks that every row came back once.

    Parameters
    ----------
    n_rows
        Rows expected, with ids ``0`` to ``n_rows - 1``.
    """

    def __init__(self, n_rows: int) -> None:
        self.n_rows = n_rows
        self._arrays: dict[str, np.ndarray] = {}
        self._seen = np.zeros(n_rows, dtype=bool)

    def add(self, batch: dict[str, np.ndarray]) -> int:
        """Store one explained batch; returns its number of rows.

        Raises
        ------
        ValueError
            The batch is a worker's refusal (see
            :class:`~ig_plugin._batch.worker.CheckedBatchExplainer`): its message.
        """
        if REFUSED in batch:
            raise ValueError(str(np.asarray(batch[REFUSED])[0]))
        rows = np.asarray(batch[ROW_ID], dtype=np.int64)
        if self._seen[rows].any():
            raise RuntimeError(f"Rows {rows[self._seen[rows]][:5].tolist()} came back twice.")
        self._seen[rows] = True
        for column, name in OUTPUT_NAMES.items():
            if column not in batch:
                continue
            values = np.asarray(batch[column])
            if name not in self._arrays:
                # Allocated once, filled in place: no list of parts to concatenate at the end.
                self._arrays[name] = np.empty((self.n_rows, *values.shape[1:]), values.dtype)
            self._arrays[name][rows] = values
        return len(rows)

    def arrays(self) -> dict[str, np.ndarray]:
        """The output arrays in row order; a RuntimeError if any row is missing."""
        if not self._seen.all():
            missing = np.flatnonzero(~self._seen)
            raise RuntimeError(
                f"{len(missing)} rows were not explained (first: {missing[:5].tolist()})."
            )
        return self._arrays
