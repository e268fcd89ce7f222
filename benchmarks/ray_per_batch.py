"""What one Ray actor costs per batch beyond the explaining, measured in one process.

Workload 4 (the tabular MLP, 20 features, ``internal_batch_size=500``), ``--batch-size 256``: the
same :class:`~ig_plugin._batch.worker.BatchExplainer` called in a loop (the plain run), and on a
local Ray with one actor holding both cores (and with ``--actors 1,2`` two actors of a core each,
``explain_dataset``'s default), the rows sent in Ray blocks of the given numbers of rows. Each
mode at two N; the marginal rows per second come from the difference, so the actor's start
(TensorFlow's import and the model's loading) cancels out. A repeat runs every mode in turn, the
plain loop first, within one Ray session (idle while the plain loop runs); each Ray mode's time
per row is compared with the plain loop's of the same repeat, as the machine's load moves
between repeats.

    python benchmarks/ray_per_batch.py [--sizes 20000,60000] [--blocks 256,4096] [--actors 1,2]
                                       [--repeats 3]

Prints the seconds and the marginal rows per second of each mode and repeat, and the ratios to
the plain loop; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import statistics
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
    parser.add_argument("--repeats", type=int, default=1, help="rounds over all the modes")
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
        for _ in worker.explain_batches(batches(data[n], None, BATCH_SIZE)):  # as the command
            pass

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
    on_ray_modes = {
        f"ray, {actors} actor{'s' if actors > 1 else ''}, blocks of {block} rows": (block, actors)
        for actors in actor_counts
        for block in blocks
    }
    # seconds[mode][repeat][n]. Each repeat runs every mode in turn, the plain loop first, so a
    # change in the machine's load hits the modes of one repeat alike; the ratios compare modes
    # within a repeat.
    seconds: dict[str, list[dict[int, float]]] = {mode: [] for mode in ["plain", *on_ray_modes]}
    load = LoadMeter()
    with ray_session(None, 2):
        for _ in range(args.repeats):
            seconds["plain"].append({n: timed(plain, n) for n in sizes})
            for mode, (block, actors) in on_ray_modes.items():
                seconds[mode].append({n: timed(on_ray, n, block, actors) for n in sizes})
    others = load.stop()
    low, high = sizes[0], sizes[-1]
    machine = describe()
    print(f"{machine['cpu']} ({machine['cores']} cores); other processes: {others:.2f} cores")

    def per_row(by_n: dict[int, float]) -> float:
        """Marginal seconds per row between the smallest and the largest N."""
        return (by_n[high] - by_n[low]) / (high - low)

    for mode, repeats in seconds.items():
        times = ", ".join(
            f"N={n}: " + "/".join(f"{r[n]:.1f}" for r in repeats) + " s" for n in sizes
        )
        rates = "/".join(f"{1 / per_row(r):,.0f}" for r in repeats)
        line = f"{mode}: {times}; marginal {rates} rows/s"
        if mode != "plain":
            pairs = list(zip(repeats, seconds["plain"], strict=True))
            ratios = [per_row(r) / per_row(p) for r, p in pairs]
            ends = [r[high] / p[high] for r, p in pairs]
            line += (
                "; time per row over the plain loop's in the same repeat: "
                + ", ".join(f"{x:.2f}x" for x in ratios)
                + f" (median {statistics.median(ratios):.2f}x); end to end at N={high}: "
                + ", ".join(f"{x:.2f}x" for x in ends)
            )
        print(line)


if __name__ == "__main__":
    main()
