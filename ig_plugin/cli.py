"""The ``ig-plugin`` command: explain a whole dataset file, on this machine or on Ray.

    ig-plugin explain MODEL DATA --output OUT [--explainer FOLDER]
                      [--target INT | --target-file T.npy] [--n-steps N] [--method M]
                      [--internal-batch-size P | auto] [--memory-budget BYTES]
                      [--batch-size B]
                      [--ray] [--ray-address ADDR] [--actors K] [--cpus-per-actor C]
                      [--no-progress]

Exit codes: 0 done; 2 bad arguments or files (one line on stderr; OUT is left untouched); 143
stopped by SIGTERM (after removing the temporary output, stopping a local Ray); 1 an unexpected
failure. OUT is written whole or not at all.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
from tqdm import tqdm

from ig_plugin._batch import files
from ig_plugin._batch.model_check import RowsToCheck
from ig_plugin._batch.rows import FEATURES, ROW_ID, TARGETS, Collector, batches
from ig_plugin._batch.signals import EXIT_CODE as TERMINATED
from ig_plugin._batch.signals import Terminated, sigterm_raises
from ig_plugin._batch.worker import FIXABLE_ERRORS, BatchExplainer, Columns, ExplainerSettings
from ig_plugin._integral.quadrature import MIN_STEPS

PROGRAM = "ig-plugin"
#: Exit code for bad arguments or files, as argparse uses for bad usage.
BAD_INPUT = 2
#: What the command line turns into exit code 2: the errors the user can fix, the same as an
#: actor answers with on Ray, and an OUT that cannot be written.
USER_ERRORS = (*FIXABLE_ERRORS, files.OutputNotWritable)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other bad-input message of this command (argparse adds the usage).
        self.exit(BAD_INPUT, f"{PROGRAM}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(least: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int, received {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"expected an int >= {least}, received {text!r}")
        return value

    return parse


_positive_int, _non_negative_int = _int_at_least(1), _int_at_least(0)


def _points_or_auto(text: str) -> int | str:
    """``--internal-batch-size``: a positive int, or "auto"."""
    return "auto" if text == "auto" else _positive_int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROGRAM, description="Integrated Gradients for Keras models.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    explain = commands.add_parser(
        "explain",
        help="explain every row of a dataset file",
        description="Explain every row of DATA with Integrated Gradients and write the "
        "attributions, deltas, predictions and targets to OUT (a .npz), in DATA's row order.",
    )
    explain.add_argument("model", metavar="MODEL", type=Path, help="a Keras model (.keras, .h5)")
    explain.add_argument(
        "data",
        metavar="DATA",
        type=Path,
        help="a .npy file (rows are samples) or a .parquet file (columns are features)",
    )
    explain.add_argument("--output", "-o", required=True, type=Path, metavar="OUT", help=".npz")
    explain.add_argument(
        "--explainer",
        type=Path,
        metavar="FOLDER",
        help="a folder saved by an ig_plugin explainer (IntegratedGradients, XRAI, ...)",
    )
    targets = explain.add_mutually_exclusive_group()
    targets.add_argument("--target", type=_non_negative_int, help="one target for every row")
    targets.add_argument(
        "--target-file", type=Path, metavar="T.npy", help="targets: (N,) ints, or (N, k) indices"
    )
    explain.add_argument("--n-steps", type=_positive_int, help="points per path (default 50)")
    explain.add_argument("--method", choices=sorted(MIN_STEPS), help="default gausslegendre")
    explain.add_argument(
        "--internal-batch-size",
        type=_points_or_auto,
        metavar="P",
        help="most path points per gradient batch (default 100), or auto: from --memory-budget",
    )
    explain.add_argument(
        "--memory-budget",
        type=_positive_int,
        metavar="BYTES",
        help="with --internal-batch-size auto (default: a quarter of the memory available)",
    )
    explain.add_argument(
        "--batch-size", type=_positive_int, default=256, metavar="B", help="rows per batch (256)"
    )
    explain.add_argument("--ray", action="store_true", help="run on Ray Data")
    explain.add_argument(
        "--ray-address", metavar="ADDR", help="a Ray cluster (default: start a local one)"
    )
    explain.add_argument(
        "--actors", type=_positive_int, metavar="K", help="Ray actors (2; at most one per batch)"
    )
    explain.add_argument(
        "--cpus-per-actor",
        type=_positive_int,
        metavar="C",
        help="CPUs per actor (local Ray: an equal share of this machine's; a cluster: 1)",
    )
    explain.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _check_ray_options(args: argparse.Namespace) -> None:
    given = [
        option
        for option, value in (
            ("--ray-address", args.ray_address),
            ("--actors", args.actors),
            ("--cpus-per-actor", args.cpus_per_actor),
        )
        if value is not None
    ]
    if given and not args.ray:
        raise ValueError(f"{', '.join(given)} need --ray.")


def _read_inputs(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray | None]:
    """Every file check that needs no TensorFlow: DATA, the targets, MODEL, FOLDER, OUT."""
    files.check_output_file(args.output)
    files.check_input_file(args.model, "MODEL", (".keras", ".h5"))
    if args.explainer is not None and not args.explainer.is_dir():
        raise FileNotFoundError(f"--explainer {str(args.explainer)!r} is not a folder.")
    data = files.read_data(args.data)
    if args.target_file is not None:
        return data, files.read_targets(args.target_file, len(data))
    if args.target is not None:
        return data, np.full(len(data), args.target, dtype=np.int64)
    return data, None


def _explain_here(
    worker: BatchExplainer, data: np.ndarray, targets: np.ndarray | None, args: argparse.Namespace
) -> Collector:
    collector = Collector(len(data))
    with tqdm(total=len(data), unit="row", desc="explain", disable=args.no_progress) as bar:
        for answer in worker.explain_batches(batches(data, targets, args.batch_size)):
            bar.update(collector.add(answer))
    return collector


def _explain_on_ray(
    data: np.ndarray,
    targets: np.ndarray | None,
    args: argparse.Namespace,
    settings: ExplainerSettings,
    rows_check: RowsToCheck,
) -> Collector:
    """Explain on Ray, the actors checking ``rows_check`` against the model first.

    This process loads no model and imports no TensorFlow: the actors load the model anyway,
    and each checks the rows before its first batch. Importing TensorFlow here cost the run 4
    CPU-seconds of a 2-core Intel Xeon, on the cores Ray's start and the actors' imports use.
    An actor whose model the rows do not fit answers with the error (see
    :class:`~ig_plugin._batch.worker.CheckedBatchExplainer`), which the collector raises; Ray
    is then stopped.
    """
    from ig_plugin._batch.on_ray import block_rows, dataset_from_batches, local_cpus, ray_session
    from ig_plugin.distributed import explain_dataset

    # No more actors than batches: a batch goes to one actor, so an extra actor would only load
    # the model (and Ray would warn that it gets no input).
    actors = min(args.actors or 2, -(-len(data) // args.batch_size))
    rows_per_block = block_rows(len(data), args.batch_size, actors)
    cpus = args.cpus_per_actor
    if cpus is None:
        cpus = max(1, local_cpus(actors) // actors) if not args.ray_address else 1
    collector = Collector(len(data))
    with ray_session(args.ray_address, local_cpus(actors)):
        rows = dataset_from_batches(batches(data, targets, rows_per_block))
        explained = explain_dataset(
            rows,
            args.model,
            args.explainer,
            feature_column=FEATURES,
            target_column=None if targets is None else TARGETS,
            id_column=ROW_ID,
            actors=actors,
            batch_size=args.batch_size,
            cpus_per_actor=cpus,
            _rows_check=rows_check,
            **settings.given(),
        )
        answers = iter(explained.iter_batches(batch_format="numpy", batch_size=None))
        # The bar is drawn from the first answer on: a refusal is the command's only line.
        first = next(answers, None)
        done = 0 if first is None else collector.add(first)
        with tqdm(
            total=len(data), initial=done, unit="row", desc="explain", disable=args.no_progress
        ) as bar:
            for batch in answers:
                bar.update(collector.add(batch))
    return collector


def explain(args: argparse.Namespace) -> None:
    """Run ``ig-plugin explain``; user errors are raised as :data:`USER_ERRORS`."""
    _check_ray_options(args)
    settings = ExplainerSettings(
        args.n_steps, args.method, args.internal_batch_size, args.memory_budget
    )
    settings.check_for(args.explainer, lambda name: "--" + name.replace("_", "-"))
    if args.ray:
        from ig_plugin._batch.on_ray import check_address, import_ray

        import_ray()
        if args.ray_address:
            check_address(args.ray_address)  # before the model is loaded: a wrong address is fast
    data, targets = _read_inputs(args)
    rows_check = RowsToCheck.of(data, targets, f"DATA {str(args.data)!r}")
    if args.ray:
        collector = _explain_on_ray(data, targets, args, settings, rows_check)
    else:
        columns = Columns(FEATURES, None if targets is None else TARGETS, ROW_ID)
        worker = BatchExplainer(args.model, args.explainer, settings, columns)
        worker.model_check.check_rows(rows_check)
        collector = _explain_here(worker, data, targets, args)
    files.write_npz_atomically(args.output, collector.arrays())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ig-plugin`` and ``python -m ig_plugin``; returns the exit code."""
    # TensorFlow's C++ log lines off in the processes started from here (Ray's actors); this
    # process imported TensorFlow with the package already.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        with sigterm_raises():
            explain(args)
    except USER_ERRORS as error:
        message = " ".join(str(error).split())  # one line, whatever the message held
        print(f"{PROGRAM}: error: {message}", file=sys.stderr)
        return BAD_INPUT
    except Terminated:
        print(f"{PROGRAM}: terminated by SIGTERM", file=sys.stderr)
        return TERMINATED
    return 0
