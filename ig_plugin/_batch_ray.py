"""The command line's side of Ray: a quiet session, and its in-memory rows as a Ray dataset."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from ig_plugin._batch_signals import restore_sigterm

if TYPE_CHECKING:
    import ray.data


def import_ray() -> None:
    """Fail early, with the install command, where the ``ray`` extra is missing."""
    try:
        import ray.data  # noqa: F401
    except ImportError as error:
        raise ValueError(f"--ray needs Ray Data ({error}): pip install 'ig_plugin[ray]'.") from None


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int) -> Iterator[None]:
    """Connect to the Ray cluster at ``address``, or start a local one with ``num_cpus`` CPUs.

    The session is shut down on leaving, also on errors. Ray's own progress output and its
    workers' logs are turned off: the command line shows its own progress bar on stderr.
    ``ray.init`` sets a SIGTERM handler of its own (``sys.exit``); the caller's is put back, so
    that SIGTERM means the same with and without Ray.
    """
    import ray
    import ray.data

    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        _init(address, num_cpus)
    finally:
        restore_sigterm(sigterm)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        yield
    finally:
        ray.shutdown()


def _init(address: str | None, num_cpus: int) -> None:
    import ray

    if address:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    else:
        # A new local cluster, never one that happens to run on this machine already. Its
        # workers do this command's work, so they run at its priority: Ray's default (nice 15)
        # would let any other process on the machine starve them.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
        )


def local_cpus(actors: int) -> int:
    """CPUs of a local cluster: the machine's, and at least one per actor."""
    return max(os.cpu_count() or 1, actors)


def dataset_from_batches(batches: Iterable[dict[str, np.ndarray]]) -> ray.data.Dataset:
    """A Ray dataset with one block per batch, so that actors get exactly these batches."""
    import pyarrow as pa
    import ray.data
    from ray.data.extensions import ArrowTensorArray

    def column(values: np.ndarray) -> pa.Array:
        values = np.ascontiguousarray(values)
        return ArrowTensorArray.from_numpy(values) if values.ndim > 1 else pa.array(values)

    tables = [pa.table({name: column(v) for name, v in batch.items()}) for batch in batches]
    return ray.data.from_arrow(tables)
