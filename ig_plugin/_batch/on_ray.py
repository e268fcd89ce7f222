"""The command line's side of Ray: a quiet session, and its in-memory rows as a Ray dataset."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from ig_plugin._batch.signals import restore_sigterm

if TYPE_CHECKING:
    import ray.data


def import_ray() -> None:
    """Fail early, with the install command, where the ``ray`` extra is missing."""
    try:
        import ray.data  # noqa: F401
    except ImportError as error:
        raise ValueError(f"--ray needs Ray Data ({error}): pip install 'ig_plugin[ray]'.") from None


#: Seconds a TCP connection to ``--ray-address`` may take before nothing is said to listen there.
_PROBE_TIMEOUT_S = 10
#: Ray 2.60 tries to reach a cluster 20 times, and a try where nothing answers takes about 40 s:
#: a quarter of an hour before it gives up. This variable sets the number of tries; one keeps
#: the wait under a minute.
_TRIES_VARIABLE = "RAY_gcs_server_port_wait_time_s"


def check_address(address: str) -> None:
    """A ValueError naming ``address`` at once if nothing listens there.

    The address tried is the one Ray would connect to (``auto``: the cluster this machine
    joined; ``127.0.0.1``: this node's IP). Ray Client addresses (``ray://``) are left to Ray.
    Something else than Ray listening there is found by :func:`ray_session`, within a minute.
    """
    if "://" in address:
        return
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:  # a Ray that moved it: ray_session's bound still holds
        return
    try:
        target = canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as error:
        raise ValueError(f"--ray-address {address!r}: {error}") from None
    if target is None:  # "local": a new local cluster
        return
    host, _, port = target.rpartition(":")
    if not port.isdigit():
        raise ValueError(
            f"--ray-address must be HOST:PORT, auto or ray://HOST:PORT. Received: {address!r}."
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), _PROBE_TIMEOUT_S).close()
    except OSError as error:
        raise ValueError(
            f"--ray-address {address!r}: no Ray cluster answers at {target} "
            f"({error.strerror or error})."
        ) from None


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
        given = os.environ.get(_TRIES_VARIABLE)
        os.environ.setdefault(_TRIES_VARIABLE, "1")  # a number the user set is theirs to keep
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        except ConnectionError as error:
            raise ValueError(
                f"--ray-address {address!r}: no Ray cluster answered ({error})."
            ) from None
        finally:
            if given is None:
                del os.environ[_TRIES_VARIABLE]
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


#: Most ``--batch-size`` batches per Ray block. Ray runs a task per block, and a task costs
#: milliseconds of scheduling and Arrow conversion whatever its rows: a block per 256-row batch
#: paid that for every batch (about 28 ms more per batch than the plain run, on two cores).
#: An actor gets up to as many batches per call (see ``ig_plugin.distributed.BATCHES_PER_CALL``)
#: and explains them ``--batch-size`` rows at a time.
BATCHES_PER_BLOCK = 16


def block_rows(n_rows: int, batch_size: int, actors: int) -> int:
    """Rows per Ray block: up to :data:`BATCHES_PER_BLOCK` batches, fewer when that would
    leave an actor without two blocks to work on (a whole number of batches, at least one)."""
    per_actor = -(-n_rows // (2 * actors))
    return max(1, min(BATCHES_PER_BLOCK, per_actor // batch_size)) * batch_size


def dataset_from_batches(batches: Iterable[dict[str, np.ndarray]]) -> ray.data.Dataset:
    """A Ray dataset with one block per batch of ``batches`` (see :func:`block_rows`).

    Nothing runs on the cluster: each block's metadata is taken here, from the table in hand.
    ``ray.data.from_arrow`` runs a task per table for it and waits for them, and on a local
    cluster those tasks started two worker processes before any actor could start (on a 2-core
    Intel Xeon that cost 1.5 s in some runs, and nothing measurable in others).
    """
    import pyarrow as pa
    import ray.data
    from ray.data.extensions import ArrowTensorArray

    def column(values: np.ndarray) -> pa.Array:
        values = np.ascontiguousarray(values)
        return ArrowTensorArray.from_numpy(values) if values.ndim > 1 else pa.array(values)

    tables = [pa.table({name: column(v) for name, v in batch.items()}) for batch in batches]
    return ray.data.from_blocks(tables)
