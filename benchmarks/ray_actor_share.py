"""Why one Ray actor explains more slowly per row than the plain loop: timed inside the actor.

Workload 4 (the tabular MLP), ``--batch-size 256``, ``internal_batch_size=500``, as in
``ray_per_batch.py``. Three runs of the same rows:

- the plain loop (:class:`~ig_plugin._batch.worker.BatchExplainer` over the batches, as the command
  line runs it);
- the plain loop again while another process takes short bursts of CPU (busy ``--burst-ms`` in
  every ``--period-ms``: about the share Ray's own processes take while an actor works);
- one Ray actor holding both cores, whose worker times its own calls: the wall time inside them
  and the process's CPU time, after its first call (which traces), and the gaps between them.

For each: microseconds per row and the CPU share (CPU seconds over wall seconds; 1.0 is one
core busy). Where the actor does the same CPU work per row with less of it in parallel, and the
bursts alone slow the plain loop as much, the actor's cost is Ray's processes sharing two cores.

    python benchmarks/ray_actor_share.py [--rows 200000] [--burst-ms 1] [--period-ms 10]

Prints the figures; nothing is written.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
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
BLOCK_ROWS = 4096
#: A busy loop of ``burst`` seconds in every ``period``, run as its own process.
BURSTS = (
    "import sys, time\n"
    "burst, period = float(sys.argv[1]), float(sys.argv[2])\n"
    "while True:\n"
    "    start = time.perf_counter()\n"
    "    while time.perf_counter() - start < burst:\n"
    "        pass\n"
    "    time.sleep(period - burst)\n"
)


class TimedWorker(BatchExplainer):
    """A worker that appends (wall start, wall end, CPU seconds, rows) of each call to a JSON
    file named by its process id in :attr:`folder` (set before Ray pickles the class)."""

    folder = ""

    def __call__(self, batch: dict) -> dict:
        start, cpu = time.perf_counter(), time.process_time()
        result = super().__call__(batch)
        calls = getattr(self, "_calls", [])
        calls.append((start, time.perf_counter(), time.process_time() - cpu, len(batch[ROW_ID])))
        self._calls = calls
        Path(self.folder, f"{os.getpid()}.json").write_text(json.dumps(calls))
        return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--burst-ms", type=float, default=1.0)
    parser.add_argument("--period-ms", type=float, default=10.0)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp())
    model = folder / "model.keras"
    WORKLOADS["mlp"].build().save(model)
    data = WORKLOADS["mlp"].make_inputs(args.rows)
    settings = ExplainerSettings(None, None, INTERNAL_BATCH_SIZE)
    worker = BatchExplainer(str(model), None, settings, Columns(FEATURES, None, ROW_ID))
    for batch in batches(data[:2000], None, BATCH_SIZE):  # trace first
        worker(batch)

    def plain() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in worker.explain_batches(batches(data, None, BATCH_SIZE)):  # as the command
            pass
        return time.perf_counter() - start, time.process_time() - cpu

    load = LoadMeter()
    runs = {"plain loop": plain()}
    bursts = [str(args.burst_ms / 1000), str(args.period_ms / 1000)]
    other = subprocess.Popen([sys.executable, "-c", BURSTS, *bursts])
    try:
        time.sleep(0.5)
        runs["plain loop with the bursts"] = plain()
    finally:
        other.kill()
        other.wait()
    TimedWorker.folder = str(folder / "calls")
    os.mkdir(TimedWorker.folder)
    with ray_session(None, 2):
        explained = explain_dataset(
            dataset_from_batches(batches(data, None, BLOCK_ROWS)),
            str(model),
            feature_column=FEATURES,
            id_column=ROW_ID,
            actors=1,
            batch_size=BATCH_SIZE,
            cpus_per_actor=2,
            internal_batch_size=INTERNAL_BATCH_SIZE,
            _worker=TimedWorker,
        )
        done = sum(len(b[ROW_ID]) for b in explained.iter_batches(batch_size=None))
    others = load.stop()
    if done != args.rows:
        raise RuntimeError(f"Ray returned {done} rows of {args.rows}")
    (log,) = [json.loads(p.read_text()) for p in Path(TimedWorker.folder).iterdir()]
    later = log[1:]  # the first call traces
    gaps = sum(b[0] - a[1] for a, b in itertools.pairwise(later))
    actor_rows = sum(call[3] for call in later)
    inside = sum(call[1] - call[0] for call in later)
    actor_cpu = sum(call[2] for call in later)

    machine = describe()
    print(f"{machine['cpu']} ({machine['cores']} cores); other processes: {others:.2f} cores")
    per_row = {}
    for name, (wall, cpu) in runs.items():
        per_row[name] = wall / args.rows
        print(
            f"{name}: {args.rows:,} rows, {wall:.2f} s, {1e6 * per_row[name]:.1f} us per row, "
            f"CPU {cpu / wall:.2f} cores, {1e6 * cpu / args.rows:.1f} CPU us per row"
        )
    print(
        f"one Ray actor, inside its calls after the first: {actor_rows:,} rows, {inside:.2f} s, "
        f"{1e6 * inside / actor_rows:.1f} us per row, CPU {actor_cpu / inside:.2f} cores, "
        f"{1e6 * actor_cpu / actor_rows:.1f} CPU us per row; gaps between its calls "
        f"{gaps:.2f} s ({1e6 * gaps / actor_rows:.1f} us per row)"
    )
    base = per_row["plain loop"]
    print(
        f"bursts: {args.burst_ms:g} ms busy in every {args.period_ms:g} ms. Time per row over the "
        f"plain loop's: with the bursts {per_row['plain loop with the bursts'] / base:.2f}x; "
        f"the actor inside its calls {inside / actor_rows / base:.2f}x, "
        f"with the gaps {(inside + gaps) / actor_rows / base:.2f}x"
    )


if __name__ == "__main__":
    main()
