"""What one Ray actor costs per batch beyond the explaining, measured in one process.

Workload 4 (the tabular MLP, 20 features, ``internal_batch_size=500``), ``--batch-size 256``: the
same :class:`~ig_plugin._batch.worker.BatchExplainer` called in a loop (the plain run), then on a
local Ray with one actor holding both cores (and with ``--actors 1,2`` two actors of a core each,
``explain_dataset``'s default), the rows sent in Ray blocks of the given numbers of rows, then
the plain loop again (the load of other processes moves). Each mode at two N; the
marginal rows per second come from the difference, so the actor's start (TensorFlow's import and
the model's loading) cancels out.

    python benchmarks/ray_per_batch.py [--sizes 20000,60000] [--blocks 256,4096] [--actors 1,2]

Prints the seconds and the marginal rows per second of each mode; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from machine import LoadMeter, describe
from workloads import WORKLOADS

from ig_plugin._batch.on_ray import dataset_from_batches, ray_session
from ig_plugin._batch.rows import FEATURES, ROW_ID, batches
from ig_plugin._batch.worker import BatchExplainer, Columns, ExplainerSettings
from ig_plugin.distributed import explain_dataset

BATCH_SIZE = 256
INTERNAL_BATCH_SIZE = 500


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="20000,60000")
    parser.add_argument("--blocks", default="256,4096", help="rows per Ray block")
    parser.add_argument("--actors", default="1", help="actor counts, sharing the two cores")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    blocks = [int(b) for b in args.blocks.split(",")]
    actor_counts = [int(a) for a in args.actors.split(",")]
    workload = WORKLOADS["mlp"]
    model = Path(tempfile.mkdtemp()) / "model.keras"
    workload.build().save(model)
    data = {n: workload.make_inputs(n) for n in sizes}
    settings = ExplainerSettings(None, None, INTERNAL_BATCH_SIZE)
    worker = BatchExplainer(str(model), None, settings, Columns(FEATURES, None, ROW_ID))

    def plain(n: int) -> None:
        for batch in batches(data[n], None, BATCH_SIZE):
            worker(batch)

    def on_ray(n: int, block: int, actors: int) -> None:
        rows = dataset_from_batches(batches(data[n], None, block))
        explained = explain_dataset(
            rows,
            str(model),
            feature_column=FEATURES,
            id_column=ROW_ID,
            actors=actors,
            batch_size=BATCH_SIZE,
            cpus_per_actor=max(1, 2 // actors),
            internal_batch_size=INTERNAL_BATCH_SIZE,
        )
        done = sum(len(b[ROW_ID]) for b in explained.iter_batches(batch_size=None))
        assert done == n

    def timed(run, *arguments) -> float:
        start = time.perf_counter()
        run(*arguments)
        return time.perf_counter() - start

    plain(sizes[0])  # trace first
    seconds: dict[str, dict[int, float]] = {}
    load = LoadMeter()
    seconds["plain"] = {n: timed(plain, n) for n in sizes}
    with ray_session(None, 2):
        for actors in actor_counts:
            for block in blocks:
                mode = f"ray, {actors} actor{'s' if actors > 1 else ''}, blocks of {block} rows"
                seconds[mode] = {n: timed(on_ray, n, block, actors) for n in sizes}
    seconds["plain, again"] = {n: timed(plain, n) for n in sizes}
    others = load.stop()
    low, high = sizes[0], sizes[-1]
    machine = describe()
    print(f"{machine['cpu']} ({machine['cores']} cores); other processes: {others:.2f} cores")
    for mode, by_n in seconds.items():
        marginal = (high - low) / (by_n[high] - by_n[low])
        per_batch = 1000 * (by_n[high] - by_n[low]) / ((high - low) / BATCH_SIZE)
        times = ", ".join(f"N={n}: {s:.1f} s" for n, s in by_n.items())
        print(f"{mode}: {times}; marginal {marginal:,.0f} rows/s, {per_batch:.1f} ms per batch")


if __name__ == "__main__":
    main()
