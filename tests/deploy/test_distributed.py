"""Explanations on Ray Data: ``ig-plugin explain --ray`` and ``explain_dataset`` give the numbers of
an in-process ``explain``, rows in order (or carrying their ids), also when an actor dies.

One local Ray cluster (2 CPUs) serves the module.
"""

import os
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
ArrowTensorArray = pytest.importorskip("ray.data.extensions").ArrowTensorArray

from batch_cases import (  # noqa: E402
    BATCH_SIZE,
    COMMAND_TIMEOUT_S,
    N_FEATURES,
    TOLERANCE,
    make_case,
    run_command,
)
from batch_cases import assert_matches as assert_output_matches  # noqa: E402

from ig_plugin._batch.on_ray import dataset_from_batches  # noqa: E402
from ig_plugin._batch.worker import BatchExplainer  # noqa: E402
from ig_plugin.distributed import (  # noqa: E402
    BATCHES_PER_CALL,
    CALL_BYTES,
    _rows_per_call,
    explain_dataset,
)

#: Most seconds a Ray Data run in this process may go without progress before it fails.
NO_PROGRESS_TIMEOUT_S = 180
#: Most seconds the command may wait for a cluster at --ray-address that does not answer (the
#: documented bound; the command used to wait a quarter of an hour).
CONNECT_BOUND_S = 60


#: The line Ray prints once in every run that uses an actor pool: harmless (docs/datasets.rst).
RESTART_NOTICE = "has constructor arguments in the object store and max_restarts > 0"
#: Ray's warnings and errors on stderr: its C++ log lines at W/E/F, Python warnings, messages
#: its processes send to the driver, and its Python loggers' warnings and errors.
RAY_COMPLAINT = re.compile(
    r"^\[\d{4}-\d\d-\d\d [\d:,]+ [WEF] "  # [2026-12-02 06:52:20,904 E 6204 6204] file.cc:1: ...
    r"|\w+Warning: "
    r"|\(raylet\)"
    r"|^\d{4}-\d\d-\d\d [\d:,]+\s+(WARNING|ERROR) "
)


def ray_complaints(stderr):
    """The lines of ``stderr`` where Ray warns or reports an error, but the restart notice."""
    return [
        line
        for line in stderr.splitlines()
        if RAY_COMPLAINT.search(line) and RESTART_NOTICE not in line
    ]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster for this module: its address, for the command's --ray-address."""
    # Workers at the tests' priority (Ray's default is nice 15, starved on a busy machine).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_worker_niceness", "0")
        context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().execution_no_progress_timeout_s = NO_PROGRESS_TIMEOUT_S
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return make_case(tmp_path_factory.mktemp("ray"))


#: The command, with the modules of TensorFlow, Keras and alibi it imported printed at the end.
COMMAND_WITH_ITS_IMPORTS = (
    "import sys\n"
    "from ig_plugin.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print(sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'alibi') if m in sys.modules))\n"
    "sys.exit(code)\n"
)


def test_command_on_ray_matches_in_process_explain_and_imports_no_tensorflow(
    cluster, case, tmp_path
):
    output = tmp_path / "out.npz"
    arguments = [
        "explain", case.model_path, case.data_path, "-o", output, "--batch-size", BATCH_SIZE,
        "--ray", "--ray-address", cluster, "--actors", 2, "--no-progress",
    ]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", COMMAND_WITH_ITS_IMPORTS, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr
    assert_output_matches(output, case.reference())
    assert ray_complaints(result.stderr) == []
    # Only the actors load the model: the command's process imports none of them.
    assert result.stdout.splitlines()[-1] == "[]", result.stdout


def test_a_model_that_does_not_fit_fails_with_the_actors_one_line(cluster, case, tmp_path):
    # The actors check the rows against the model they load: their refusal is the command's
    # one line, after the lines Ray prints for any run, and nothing is written.
    wide = tmp_path / "wide.npy"
    np.save(wide, np.ones((6, N_FEATURES + 1), dtype="float32"))
    result = run_command(
        "explain", case.model_path, wide, "-o", tmp_path / "out.npz",
        "--ray", "--ray-address", cluster,
    )  # fmt: skip
    assert result.returncode == 2
    *before, last = result.stderr.splitlines()
    # The input layer is input_layer_K when this process built other models before.
    expected = (
        re.escape(
            f"ig-plugin: error: DATA {str(wide)!r} must have shape (N, {N_FEATURES}) for the "
            "model's input "
        )
        + r"'input_layer(_\d+)?'"
        + re.escape(f" (N samples; None: any size). Received: shape (6, {N_FEATURES + 1}).")
    )
    assert re.fullmatch(expected, last), last
    # No progress bar before it (it is drawn from the first explained rows), no traceback.
    assert not [line for line in before if "ig-plugin" in line or "explain" in line], before
    assert not [line for line in before if "Traceback" in line or "Error" in line], before
    assert ray_complaints(result.stderr) == []
    assert not (tmp_path / "out.npz").exists()


def test_fewer_batches_than_actors_start_fewer_actors_and_ray_is_quiet(cluster, case, tmp_path):
    output = tmp_path / "out.npz"
    # One batch, two actors asked for: the second would get no input (and Ray would warn).
    result = run_command(
        "explain", case.model_path, case.data_path, "-o", output, "--batch-size", len(case.X),
        "--ray", "--ray-address", cluster, "--actors", 2, "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_output_matches(output, case.reference())
    assert ray_complaints(result.stderr) == []


def test_a_killed_actor_is_restarted_and_no_row_is_lost(cluster, case, tmp_path):
    marker = tmp_path / "exited"

    class ExitsOnItsSecondBatch(BatchExplainer):
        """Exits hard, once, on its second batch: what a killed process looks like to Ray.

        Its second batch, not its second call: Ray may hand the actor every row in one call,
        which it explains ``batch_size`` rows at a time. Defined here, so Ray ships it to the
        actor by value; the marker file makes it exit once however often Ray restarts the
        actor."""

        batches = 0

        def _explain(self, batch):
            self.batches += 1
            if self.batches == 2 and not marker.exists():
                marker.touch()
                os._exit(75)  # no cleanup, no exception
            return super()._explain(batch)

    rows = ray.data.from_items([{"features": row, "row_id": i} for i, row in enumerate(case.X)])
    explained = explain_dataset(
        rows,
        case.model_path,
        actors=1,
        batch_size=BATCH_SIZE,
        _worker=ExitsOnItsSecondBatch,
    )
    back = explained.sort("row_id").take_batch(batch_size=len(case.X), batch_format="numpy")
    assert marker.exists()  # the actor did die
    assert back["row_id"].tolist() == list(range(len(case.X)))  # every row, once
    expected = case.reference()
    np.testing.assert_allclose(back["attributions"], expected["attributions"], atol=TOLERANCE)
    np.testing.assert_allclose(back["delta"], expected["deltas"], atol=TOLERANCE)


def test_an_address_where_no_cluster_answers_fails_within_the_bound(case, tmp_path):
    with socket.socket() as free:  # a port nothing listens on once this socket is closed
        free.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{free.getsockname()[1]}"
    output = tmp_path / "out.npz"
    started = time.monotonic()
    result = run_command(
        "explain", case.model_path, case.data_path, "-o", output, "--ray", "--ray-address",
        address, timeout=2 * CONNECT_BOUND_S,
    )  # fmt: skip
    assert time.monotonic() - started < CONNECT_BOUND_S
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()  # one line, before any TensorFlow or Ray output
    port = address.split(":")[1]
    assert line.startswith(f"ig-plugin: error: --ray-address {address!r}: no Ray cluster"), line
    assert line.endswith(f":{port} (Connection refused)."), line  # where Ray would connect
    assert not output.exists()


def test_explain_dataset_rows_carry_their_ids_to_parquet(cluster, case, tmp_path):
    # Scalar feature columns, string ids and a target column, as a day of logged requests.
    ids = [f"request-{i:03d}" for i in range(len(case.X))]
    targets = np.arange(len(case.X)) % 3
    features = {f"f{i}": case.X[:, i] for i in range(N_FEATURES)}
    pq.write_table(
        pa.table({"request_id": ids, **features, "label": targets}), tmp_path / "rows.parquet"
    )
    rows = ray.data.read_parquet(str(tmp_path / "rows.parquet"))
    explained = explain_dataset(
        rows,
        case.model_path,
        feature_column=list(features),
        target_column="label",
        id_column="request_id",
        actors=1,  # the cluster's other CPU reads and writes the parquet files
        batch_size=BATCH_SIZE,
        n_steps=20,
    )
    explained.write_parquet(str(tmp_path / "explained"))

    back = ray.data.read_parquet(str(tmp_path / "explained")).sort("request_id")
    written = back.take_batch(batch_size=len(ids), batch_format="numpy")
    assert sorted(written) == ["attributions", "delta", "prediction", "request_id", "target"]
    assert written["request_id"].tolist() == ids
    expected = case.reference(target=targets, n_steps=20)
    for column, name in [("attributions", "attributions"), ("delta", "deltas"),
                         ("prediction", "predictions"), ("target", "target")]:  # fmt: skip
        np.testing.assert_allclose(written[column], expected[name], rtol=TOLERANCE, atol=TOLERANCE)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"feature_column": "pixels"}, ValueError, "no column 'pixels'"),
        ({"actors": 0}, ValueError, "actors"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"explainer_uri": "saved/", "n_steps": 10}, ValueError, "n_steps"),
        ({"method": "simpson"}, ValueError, "method"),
        ({"feature_column": []}, TypeError, "feature_column"),
    ],
)
def test_explain_dataset_checks_its_arguments_first(cluster, case, arguments, error, message):
    rows = ray.data.from_items([{"features": row, "row_id": i} for i, row in enumerate(case.X)])
    with pytest.raises(error, match=message):
        explain_dataset(rows, case.model_path, **arguments)


def _tensor_rows(shape, n_rows=4):
    values = np.zeros((n_rows, *shape), np.float32)
    table = pa.table({"features": ArrowTensorArray.from_numpy(values), "row_id": np.arange(n_rows)})
    return ray.data.from_arrow([table])


def test_small_rows_go_to_an_actor_several_batches_per_call_and_large_rows_one(cluster):
    from ig_plugin._batch.worker import Columns

    small = _tensor_rows((4, 3))  # 48 bytes a row
    assert _rows_per_call(small, Columns(), 32) == 32 * BATCHES_PER_CALL
    # Rows of 1 MiB: a call holds as many 32-row batches as CALL_BYTES does, at least one.
    large = _tensor_rows((512, 512))
    assert _rows_per_call(large, Columns(), 32) == 32 * max(1, CALL_BYTES // (32 << 20))
    assert _rows_per_call(large, Columns(), 2) == 2 * min(BATCHES_PER_CALL, CALL_BYTES // (2 << 20))
    # Scalar feature columns add their widths; a dataset whose schema Ray does not know yet
    # (a lazy map) is handed over one batch per call.
    table = pa.table({"a": np.zeros(4), "b": np.zeros(4, np.float32), "row_id": np.arange(4)})
    scalars = ray.data.from_arrow([table])
    assert _rows_per_call(scalars, Columns(features=("a", "b")), 1 << 22) == 1 << 22  # 48 MiB
    assert _rows_per_call(scalars, Columns(features=("a", "b")), 1024) == 1024 * BATCHES_PER_CALL
    lazy = small.map_batches(lambda batch: batch)
    assert _rows_per_call(lazy, Columns(), 32) == 32


@ray.remote
class _CpuHolder:
    """An actor that holds the CPUs it is started with."""

    def ready(self):
        return True


def test_rows_become_a_dataset_while_every_cpu_of_the_cluster_is_busy(cluster):
    # The command line's rows become blocks with nothing run on the cluster: ray.data.from_arrow
    # ran a task per block for its metadata, which waits here until a CPU is free.
    batches = [
        {"features": np.full((3, 2), index, np.float32), "row_id": np.arange(3) + 3 * index}
        for index in range(4)
    ]
    holder = _CpuHolder.options(num_cpus=ray.cluster_resources()["CPU"]).remote()
    pool = ThreadPoolExecutor(1)
    try:
        assert ray.get(holder.ready.remote())
        dataset = pool.submit(dataset_from_batches, batches).result(timeout=30)
    finally:
        ray.kill(holder)  # first: a build that waits for a CPU can then end, and the pool close
        pool.shutdown()
    assert dataset.num_blocks() == len(batches)
    rows = dataset.take_batch(batch_size=12, batch_format="numpy")
    for name in ("features", "row_id"):
        np.testing.assert_array_equal(rows[name], np.concatenate([b[name] for b in batches]))
