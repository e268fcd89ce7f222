"""The ``ig-plugin explain`` command without Ray: the same numbers as an in-process ``explain``,
rows in DATA's order, and exit code 2 with one line on stderr (and no OUT) for bad input."""

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from batch_cases import (
    BATCH_SIZE,
    COMMAND_TIMEOUT_S,
    N_FEATURES,
    N_ROWS,
    assert_matches,
    make_case,
    run_command,
)
from compat import keras
from xrai_cases import SHAPE, cnn, random_masks, smooth_images

import ig_plugin._batch.files
import ig_plugin.cli
from ig_plugin import (
    XRAI,
    BlurIntegratedGradients,
    ExpectedGradients,
    GuidedIntegratedGradients,
    IntegratedGradients,
    NoiseTunnel,
)
from ig_plugin._batch.model_check import RowsToCheck
from ig_plugin._batch.rows import FEATURES, ROW_ID, TARGETS, Collector
from ig_plugin._batch.signals import Terminated, sigterm_raises
from ig_plugin._batch.worker import (
    REFUSED,
    BatchExplainer,
    CheckedBatchExplainer,
    Columns,
    ExplainerSettings,
)
from ig_plugin.cli import main


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return make_case(tmp_path_factory.mktemp("cli"))


def test_command_matches_in_process_explain(case, tmp_path):
    output = tmp_path / "out.npz"
    result = run_command(
        "explain", case.model_path, case.data_path, "--output", output,
        "--batch-size", BATCH_SIZE, "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_matches(output, case.reference())


def test_console_script_with_saved_explainer_and_target_file(case, tmp_path):
    IntegratedGradients(case.model, method="riemann_trapezoid", n_steps=7).save(tmp_path / "ig")
    targets = np.arange(N_ROWS) % 3
    np.save(tmp_path / "t.npy", targets)
    output = tmp_path / "out.npz"
    result = run_command(
        "explain", case.model_path, case.data_path, "-o", output, "--explainer", tmp_path / "ig",
        "--target-file", tmp_path / "t.npy", "--batch-size", BATCH_SIZE, script=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "explain: 100%" in result.stderr  # the progress bar
    assert_matches(output, case.reference(target=targets, method="riemann_trapezoid", n_steps=7))


def test_one_target_for_every_row(case, tmp_path):
    output = tmp_path / "out.npz"
    argv = ["explain", str(case.model_path), str(case.data_path), "-o", str(output)]
    assert main([*argv, "--target", "2", "--n-steps", "9", "--no-progress"]) == 0
    expected = case.reference(target=2, n_steps=9)
    with np.load(output) as written:
        assert (written["target"] == 2).all()
    assert_matches(output, {**expected, "target": None}, other_files=["target"])


def test_internal_batch_size_auto_with_a_memory_budget(case, tmp_path):
    """The gradient batches chosen from a budget: the same attributions as a fixed size, and the
    explainer's meta records the budget."""
    output = tmp_path / "out.npz"
    argv = ["explain", str(case.model_path), str(case.data_path), "-o", str(output)]
    budget = ["--internal-batch-size", "auto", "--memory-budget", str(1 << 24)]
    assert main([*argv, *budget, "--no-progress"]) == 0
    assert_matches(output, case.reference())
    settings = ExplainerSettings(internal_batch_size="auto", memory_budget=1 << 24)
    worker = BatchExplainer(case.model_path, None, settings)
    assert worker.explainer.meta["params"]["memory_budget"] == 1 << 24


def test_regression_output_has_no_target(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs))
    weights = np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    model.layers[-1].set_weights([weights])
    model.save(tmp_path / "linear.keras")
    X = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")
    np.save(tmp_path / "x.npy", X)
    output = tmp_path / "out.npz"
    argv = ["explain", str(tmp_path / "linear.keras"), str(tmp_path / "x.npy"), "-o", str(output)]
    assert main([*argv, "--batch-size", "4", "--no-progress"]) == 0
    with np.load(output) as written:
        assert sorted(written.files) == ["attributions", "deltas", "predictions"]
        # A linear model's IG from a zero baseline is w * x, exactly (closed form).
        np.testing.assert_allclose(written["attributions"], X * weights[:, 0], rtol=1e-5)


def test_integer_rows_are_explained_as_the_core_explains_them(case, tmp_path):
    X = np.round(case.X * 3).astype(np.int64)
    np.save(tmp_path / "ints.npy", X)
    output = tmp_path / "out.npz"
    argv = ["explain", str(case.model_path), str(tmp_path / "ints.npy"), "-o", str(output)]
    assert main([*argv, "--batch-size", str(BATCH_SIZE), "--no-progress"]) == 0
    reference = IntegratedGradients(case.model, target_fn=partial(np.argmax, axis=1)).explain(X)
    with np.load(output) as written:
        np.testing.assert_allclose(written["attributions"], reference.attributions[0], atol=1e-6)
        np.testing.assert_array_equal(written["target"], reference.target)


def test_parquet_columns_are_features(case, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    # An integer column too: read as float32, like the float32 columns beside it.
    X = case.X.copy()
    X[:, 0] = np.round(X[:, 0] * 3)
    columns = {f"f{i}": X[:, i] for i in range(1, N_FEATURES)}
    table = pa.table({"f0": X[:, 0].astype(np.int64), **columns})
    pq.write_table(table, tmp_path / "data.parquet")
    output = tmp_path / "out.npz"
    argv = ["explain", str(case.model_path), str(tmp_path / "data.parquet"), "-o", str(output)]
    assert main([*argv, "--batch-size", str(BATCH_SIZE), "--no-progress"]) == 0
    reference = IntegratedGradients(case.model, target_fn=partial(np.argmax, axis=1)).explain(X)
    with np.load(output) as written:
        assert written["attributions"].dtype == np.float32
        np.testing.assert_allclose(written["attributions"], reference.attributions[0], atol=1e-6)
        np.testing.assert_allclose(written["deltas"], reference.deltas, atol=1e-6)


def test_parquet_without_pyarrow_says_what_to_install(case, tmp_path, monkeypatch, capsys):
    (tmp_path / "data.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # then `import pyarrow` fails
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    argv = ["explain", str(case.model_path), str(tmp_path / "data.parquet"), "-o", "x.npz"]
    assert main(argv) == 2
    assert "pip install 'ig_plugin[parquet]'" in capsys.readouterr().err


# --- bad input: exit code 2, one line on stderr, OUT untouched ---------------------------------


def _bad_files(case, folder):
    """Each bad input: (extra arguments, DATA path, a word the message must contain)."""
    np.save(folder / "wide.npy", np.ones((5, N_FEATURES + 1), dtype="float32"))
    nan = case.X[:5].copy()
    nan[3, 1] = np.nan
    np.save(folder / "nan.npy", nan)
    np.savetxt(folder / "data.csv", case.X[:5])
    np.save(folder / "short_targets.npy", np.zeros(N_ROWS - 1, dtype=np.int64))
    return {
        "missing file": ([], folder / "absent.npy", "does not exist"),
        "wrong shape": ([], folder / "wide.npy", "shape"),
        "NaN": ([], folder / "nan.npy", "NaN"),
        "unknown extension": ([], folder / "data.csv", "extension"),
        "short target file": (
            ["--target-file", folder / "short_targets.npy"],
            case.data_path,
            "one entry per row",
        ),
        "settings with a saved explainer": (
            ["--explainer", folder, "--n-steps", "5"],
            case.data_path,
            "--n-steps",
        ),
        "Ray option without --ray": (["--actors", "2"], case.data_path, "--ray"),
        "bad --method": (["--method", "simpson"], case.data_path, "simpson"),
        "--memory-budget without auto": (
            ["--internal-batch-size", "64", "--memory-budget", "1000000"],
            case.data_path,
            "--memory-budget applies with --internal-batch-size 'auto' only",
        ),
        "bad --internal-batch-size": (
            ["--internal-batch-size", "big"],
            case.data_path,
            "expected an int, received 'big'",
        ),
    }


BAD_INPUTS = [
    "missing file",
    "wrong shape",
    "NaN",
    "unknown extension",
    "short target file",
    "settings with a saved explainer",
    "Ray option without --ray",
    "bad --method",
    "--memory-budget without auto",
    "bad --internal-batch-size",
]


def _exit_code(argv):
    """``main``'s exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


@pytest.mark.parametrize("problem", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_no_output(case, tmp_path, capsys, problem):
    extra, data, word = _bad_files(case, tmp_path)[problem]
    output = tmp_path / "out.npz"
    output.write_bytes(b"an earlier result")
    argv = ["explain", str(case.model_path), str(data), "-o", str(output), *map(str, extra)]
    assert _exit_code(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ig-plugin: error: "), lines
    assert word in lines[0]
    assert output.read_bytes() == b"an earlier result"  # OUT untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.npz")]


def _explain_dataset_here(rows, model_uri, explainer_uri, *, _rows_check, **arguments):
    """``explain_dataset`` without Ray: the worker its actors build, over the rows in this
    process."""
    columns = Columns(arguments["feature_column"], arguments["target_column"], ROW_ID)
    worker = CheckedBatchExplainer(
        _rows_check, model_uri=model_uri, explainer_uri=explainer_uri, columns=columns
    )
    return types.SimpleNamespace(iter_batches=lambda **_: (worker(batch) for batch in rows))


@pytest.mark.parametrize(
    ("extra", "word"),
    [([], f"must have shape (N, {N_FEATURES})"), (["--target", "3"], "out of range")],
    ids=["rows the model does not take", "a target past the model's classes"],
)
def test_with_ray_the_actors_refusal_is_the_commands_one_line(
    case, tmp_path, capsys, monkeypatch, extra, word
):
    pytest.importorskip("ray.data")
    import ig_plugin._batch.on_ray
    import ig_plugin.distributed

    # The actors check the rows (here, their worker in this process, with no Ray at all). The
    # progress bar is on: a refusal comes before it is drawn.
    monkeypatch.setattr(ig_plugin._batch.on_ray, "ray_session", lambda *a: contextlib.nullcontext())
    monkeypatch.setattr(ig_plugin._batch.on_ray, "dataset_from_batches", list)
    monkeypatch.setattr(ig_plugin.distributed, "explain_dataset", _explain_dataset_here)
    data = tmp_path / "data.npy"
    np.save(data, case.X if extra else np.ones((6, N_FEATURES + 1), dtype="float32"))
    output = tmp_path / "o.npz"
    argv = ["explain", case.model_path, data, "-o", output, "--ray", *extra]
    assert main(list(map(str, argv))) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("ig-plugin: error: ") and word in line, line
    assert not output.exists()


def test_a_shape_error_gives_the_shape_of_data_and_of_the_model_input(case, tmp_path, capsys):
    data = tmp_path / "wide.npy"
    np.save(data, np.ones((6, N_FEATURES + 1), dtype="float32"))
    assert main(["explain", str(case.model_path), str(data), "-o", str(tmp_path / "o.npz")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"DATA {str(data)!r} must have shape (N, {N_FEATURES})" in line, line
    assert f"Received: shape (6, {N_FEATURES + 1})" in line, line  # not one row's


def test_bad_input_in_a_real_process(case, tmp_path):
    nan = case.X.copy()
    nan[7, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    output = tmp_path / "out.npz"
    result = run_command("explain", case.model_path, tmp_path / "nan.npy", "-o", output)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"ig-plugin: error: DATA {str(tmp_path / 'nan.npy')!r} contains NaN or infinity (first "
        "at row 7): attributions would be undefined. Drop or impute those rows first."
    ]
    assert not output.exists()


# --- OUT that cannot be written: found before explaining, named in the message ---------------


@contextlib.contextmanager
def _immutable(path):
    """``path`` made immutable (chattr +i), which root cannot bypass either; else a skip."""
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)]).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


@contextlib.contextmanager
def _unwritable_output(folder, where):
    """An OUT that cannot be created, for a reason that permission bits (and root) cannot hide;
    the message must name the path yielded."""
    if where == "a folder named OUT":
        (folder / "out.npz").mkdir()
        yield folder / "out.npz"
    elif where == "under /proc":  # procfs refuses new files (ENOENT)
        yield Path("/proc/out.npz")
    elif where == "under /sys":  # sysfs refuses new files (EACCES), to root too
        yield Path("/sys/out.npz")
    elif where == "a file where its folder should be":
        (folder / "file").write_bytes(b"")
        yield folder / "file"
    else:
        (folder / "frozen").mkdir()
        with _immutable(folder / "frozen"):
            yield folder / "frozen" / "out.npz"


UNWRITABLE = [
    "a folder named OUT",
    "under /proc",
    "under /sys",
    "a file where its folder should be",
    "an immutable folder",
]


@pytest.mark.parametrize("where", UNWRITABLE)
def test_an_unwritable_output_fails_before_any_explaining(
    case, tmp_path, capsys, monkeypatch, where
):
    def explaining(*args, **kwargs):
        pytest.fail("the model was loaded before OUT was found unwritable")

    monkeypatch.setattr(ig_plugin.cli, "BatchExplainer", explaining)
    with _unwritable_output(tmp_path, where) as named:
        output = named / "out.npz" if where == "a file where its folder should be" else named
        argv = ["explain", str(case.model_path), str(case.data_path), "-o", str(output)]
        assert _exit_code(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ig-plugin: error: "), lines
    assert repr(str(named)) in lines[0], lines[0]
    assert ".tmp" not in lines[0]  # never the temporary file's name
    assert not list(tmp_path.rglob(".out.npz*"))  # no temporary file left behind


@pytest.mark.parametrize("failure", ["disk full", "OUT immutable"])
def test_a_failed_final_write_names_out_and_leaves_nothing(
    case, tmp_path, capsys, monkeypatch, failure
):
    """The check passes, the write fails anyway: exit 2, one line naming OUT, OUT as it was."""
    output = tmp_path / "out.npz"
    output.write_bytes(b"an earlier result")
    argv = ["explain", str(case.model_path), str(case.data_path), "-o", str(output)]
    if failure == "disk full":

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(np, "savez", full)
        stopped = contextlib.nullcontext()
    else:  # the folder takes new files, but the rename over OUT is refused
        stopped = _immutable(output)
    with stopped:
        assert _exit_code([*argv, "--no-progress"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ig-plugin: error: "), lines
    assert repr(str(output)) in lines[0] and ".tmp" not in lines[0], lines[0]
    assert output.read_bytes() == b"an earlier result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]


# --- SIGTERM: an orderly exit, no temporary file left ----------------------------------------

#: ``python -c`` this with PHASE PAUSED and the command's arguments: ``ig-plugin explain`` that
#: pauses (having created the file PAUSED) after its first batch, while the next ones are
#: explained, or in the middle of writing OUT (the whole output in the temporary file, not yet
#: renamed), until a signal comes.
PAUSING_COMMAND = """
import sys, time
from pathlib import Path
import numpy as np
from ig_plugin._batch import rows
from ig_plugin.cli import main

phase, paused = sys.argv[1], Path(sys.argv[2])

def pause():
    paused.touch()
    time.sleep(600)

if phase == "writing":
    savez = np.savez
    def savez_then_pause(file, **arrays):
        savez(file, **arrays)
        file.flush()
        pause()
    np.savez = savez_then_pause
else:  # in the command's thread, which takes the answers (the explain calls have their own)
    add = rows.Collector.add
    def add_then_pause(self, batch):
        added = add(self, batch)
        pause()
        return added
    rows.Collector.add = add_then_pause
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize("phase", ["explaining", "writing"])
def test_sigterm_exits_143_and_leaves_no_temporary_file(case, tmp_path, phase):
    output = tmp_path / "out.npz"
    output.write_bytes(b"an earlier result")
    paused = tmp_path / "paused"
    argv = ["explain", case.model_path, case.data_path, "-o", output, "--no-progress"]
    command = [sys.executable, "-c", PAUSING_COMMAND, phase, paused, *argv]
    process = subprocess.Popen(list(map(str, command)), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while not paused.exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the command never paused"
            time.sleep(0.1)
        # Mid-write, the temporary file is there (what SIGKILL would leave); before, it is not.
        assert len(list(tmp_path.glob(".out.npz.*.tmp"))) == (phase == "writing")
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=60)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "paused"]
    assert output.read_bytes() == b"an earlier result"  # OUT as it was
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.splitlines()[-1] == "ig-plugin: terminated by SIGTERM"


# --- the pieces -----------------------------------------------------------------------------


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        ig_plugin._batch.files.write_npz_atomically(tmp_path / "out.npz", {"a": np.ones(3)})
    assert list(tmp_path.iterdir()) == []


def test_the_nan_check_reads_a_memory_mapped_file_a_block_at_a_time(tmp_path, monkeypatch):
    """The first bad row is found and named across blocks, and no block holds more rows than
    the bound: a large file is never read whole."""
    X = np.ones((50, 4), dtype="float32")
    X[37, 2] = np.inf
    np.save(tmp_path / "data.npy", X)
    monkeypatch.setattr(ig_plugin._batch.files, "_CHECK_BYTES", 5 * X[:1].nbytes)
    seen = []
    isfinite = np.isfinite
    monkeypatch.setattr(np, "isfinite", lambda rows: seen.append(len(rows)) or isfinite(rows))
    with pytest.raises(ValueError, match=r"NaN or infinity \(first at row 37\)"):
        ig_plugin._batch.files.read_npy(tmp_path / "data.npy")
    assert seen and max(seen) == 5


def test_collector_refuses_missing_and_repeated_rows():
    collector = Collector(4)
    collector.add({"row_id": np.array([2, 0]), "delta": np.array([0.2, 0.0])})
    with pytest.raises(RuntimeError, match="came back twice"):
        collector.add({"row_id": np.array([1, 2]), "delta": np.array([0.1, 0.2])})
    with pytest.raises(RuntimeError, match="2 rows were not explained"):
        collector.arrays()
    collector.add({"row_id": np.array([3, 1]), "delta": np.array([0.3, 0.1])})
    np.testing.assert_array_equal(collector.arrays()["deltas"], [0.0, 0.1, 0.2, 0.3])


def test_sigterm_raises_once_then_the_previous_handler_is_back():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        with sigterm_raises():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this
            pytest.fail("SIGTERM did not raise")
    with sigterm_raises():
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        os.kill(os.getpid(), signal.SIGTERM)  # a second one, during the cleanup: ignored
        time.sleep(0.1)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_saved_explainers_check_takes_its_layer(tmp_path):
    # A layer's explainer takes integer ids; only the saved explainer knows it has one.
    inputs = keras.Input((4,), dtype="int32")
    hidden = keras.layers.Embedding(10, 3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(hidden)))
    model.save(tmp_path / "ids.keras")
    IntegratedGradients(model, layer=model.layers[1]).save(tmp_path / "saved")
    check = BatchExplainer(tmp_path / "ids.keras", tmp_path / "saved").model_check
    assert check.takes_ids and check.explains_predicted_class
    check.check(np.array([[1, 2, 3, 4]]))  # ids pass
    with pytest.raises(TypeError, match="integer"):
        BatchExplainer(tmp_path / "ids.keras").model_check.check(np.array([[1, 2, 3, 4]]))


def test_a_checked_worker_whose_rows_fit_answers_as_its_worker_does(case):
    batch = {FEATURES: case.X[:7], ROW_ID: np.arange(7)}
    rows = RowsToCheck.of(case.X, None, "DATA")
    checked = CheckedBatchExplainer(rows, model_uri=case.model_path, rows_per_explain=3)
    assert checked.refusal is None
    expected = BatchExplainer(case.model_path)(batch)
    answer = checked(batch)
    assert answer.keys() == expected.keys()
    for name, values in expected.items():
        np.testing.assert_array_equal(answer[name], values)


@pytest.mark.parametrize(
    ("rows", "model", "message"),
    [
        ("wide", "model", rf"DATA must have shape \(N, {N_FEATURES}\).*Received: shape \(6, "),
        ("targets", "model", "out of range"),
        ("fit", "missing", "does not exist"),
        ("fit", "not a zip", "is not: it is corrupt"),
    ],
)
def test_a_checked_worker_answers_every_batch_with_what_the_user_must_fix(
    case, tmp_path, rows, model, message
):
    data = np.ones((6, N_FEATURES + 1), "float32") if rows == "wide" else case.X
    targets = np.full(len(data), 3) if rows == "targets" else None
    model_path = {"model": case.model_path, "missing": tmp_path / "none.keras"}.get(model)
    if model_path is None:
        model_path = tmp_path / "text.keras"
        model_path.write_text("not a model")
    columns = Columns(FEATURES, None if targets is None else TARGETS, ROW_ID)
    checked = CheckedBatchExplainer(
        RowsToCheck.of(data, targets, "DATA"), model_uri=model_path, columns=columns
    )
    assert checked.worker is None and re.search(message, checked.refusal), checked.refusal
    assert "\n" not in checked.refusal
    for batch in ({FEATURES: data[:2], ROW_ID: np.arange(2)}, {ROW_ID: np.arange(1)}):
        answer = checked(batch)
        assert list(answer) == [REFUSED]
        np.testing.assert_array_equal(answer[REFUSED], [checked.refusal])
    # The command's side: the refusal is raised with its message, and nothing is stored.
    collector = Collector(len(data))
    with pytest.raises(ValueError, match=re.escape(checked.refusal)):
        collector.add(checked({ROW_ID: np.arange(1)}))
    with pytest.raises(RuntimeError, match=f"{len(data)} rows were not explained"):
        collector.arrays()


def test_a_checked_worker_raises_what_the_user_cannot_fix(case):
    class Broken(BatchExplainer):
        def __init__(self, **arguments):
            raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        CheckedBatchExplainer(
            RowsToCheck.of(case.X, None, "DATA"), Broken, model_uri=case.model_path
        )


def test_a_worker_given_no_targets_explains_the_predicted_class_and_its_meta_says_so(case):
    worker = BatchExplainer(case.model_path)
    explained = worker({"features": case.X[:5], "row_id": np.arange(5)})
    predicted = np.argmax(case.model(case.X[:5]).numpy(), axis=1)
    np.testing.assert_array_equal(explained["target"], predicted)
    # The explanations' metadata names the rule that chose the targets (it said None before).
    params = worker.explainer.explain(case.X[:2]).meta["params"]
    assert params["target_fn"] == "ig_plugin._request.targets.predicted_class"


def test_a_worker_explains_a_large_batch_rows_per_explain_at_a_time(case):
    # Ray hands an actor several batches at once; each explain call still takes one batch.
    worker = BatchExplainer(case.model_path, rows_per_explain=7)
    whole = BatchExplainer(case.model_path)
    calls = []
    explain = worker.explainer.explain
    worker.explainer.explain = lambda X, **kwargs: calls.append(len(X)) or explain(X, **kwargs)
    batch = {"features": case.X[:20], "row_id": np.arange(20)}
    explained, expected = worker(batch), whole(batch)
    assert calls == [7, 7, 6]
    assert sorted(explained) == sorted(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(explained[name], values, rtol=1e-6, atol=1e-7)


def test_a_worker_runs_two_explain_calls_at_once_with_the_same_answers(case):
    # Ray hands an actor several batches at once, the command line a stream of batches: two
    # explain calls run at once (each waits at a barrier for the other), answers in order.
    worker = BatchExplainer(case.model_path, rows_per_explain=7)
    whole = BatchExplainer(case.model_path)
    assert worker.calls_at_once == 2
    meet = threading.Barrier(2, timeout=30)
    explain = worker.explainer.explain

    def explain_with_another(X, **kwargs):
        if len(X) == 7:  # the two first calls; the last (6 rows) has no partner
            meet.wait()
        return explain(X, **kwargs)

    worker.explainer.explain = explain_with_another
    batch = {"features": case.X[:20], "row_id": np.arange(20)}
    expected = whole(batch)
    for explained in (worker(batch), _joined(worker.explain_batches(_pieces(batch, 7)))):
        assert sorted(explained) == sorted(expected)
        for name, values in expected.items():
            np.testing.assert_allclose(explained[name], values, rtol=1e-6, atol=1e-7)


def _pieces(batch, rows):
    n_rows = len(batch["row_id"])
    return ({k: v[i : i + rows] for k, v in batch.items()} for i in range(0, n_rows, rows))


def _joined(answers):
    answers = list(answers)
    return {name: np.concatenate([a[name] for a in answers]) for name in answers[0]}


@pytest.mark.parametrize(
    "arguments",
    [
        {"settings": ExplainerSettings(internal_batch_size="auto")},  # its budget is per call
        {"intra_op_threads": 1},  # a Ray actor given one CPU
    ],
    ids=["auto-batches", "one-thread"],
)
def test_a_worker_explains_one_call_at_a_time_where_two_would_overstep(case, arguments):
    case.model(case.X[:1])  # TensorFlow has run: the worker cannot change this process's threads
    worker = BatchExplainer(case.model_path, rows_per_explain=7, **arguments)
    assert worker.calls_at_once == 1
    threads = set()
    explain = worker.explainer.explain

    def explain_noting_the_thread(X, **kwargs):
        threads.add(threading.get_ident())
        return explain(X, **kwargs)

    worker.explainer.explain = explain_noting_the_thread
    explained = worker({"features": case.X[:20], "row_id": np.arange(20)})
    np.testing.assert_array_equal(explained["row_id"], np.arange(20))
    assert threads == {threading.get_ident()}


# --- any saved explainer --------------------------------------------------------------------


def _saved_explainers(case):
    """Each kind of saved explainer the command line must load, built in this process."""
    background = case.X[-8:]
    ig = IntegratedGradients(case.model, n_steps=8)
    return {
        "expected-gradients": ExpectedGradients(case.model, background, n_samples=8, seed=3),
        "noise-tunnel": NoiseTunnel(ig, nt_samples=3, stdevs=0.3, seed=4),
        "guided-ig": GuidedIntegratedGradients(cnn(), n_steps=8),
        "blur-ig": BlurIntegratedGradients(cnn(), max_sigma=3.0, n_steps=8),
        "xrai": XRAI(IntegratedGradients(cnn(), n_steps=8), random_masks(12, SHAPE[:2], 0), 4),
    }


@pytest.mark.parametrize(
    "kind", ["expected-gradients", "noise-tunnel", "guided-ig", "blur-ig", "xrai"]
)
def test_any_saved_explainer_is_loaded_by_its_class(case, tmp_path, kind):
    explainer = _saved_explainers(case)[kind]
    explainer.save(tmp_path / kind)
    if kind in ("guided-ig", "blur-ig", "xrai"):  # images
        keras_file, X = tmp_path / "cnn.keras", smooth_images(5, seed=2)
        explainer.model.save(keras_file)
        np.save(tmp_path / "images.npy", X)
        data = tmp_path / "images.npy"
        # XRAI over IG is batch-invariant: two images at a time. Guided IG's path can depend
        # on the batch (float32 gradients), so one batch as in the reference.
        batch_size = "2" if kind == "xrai" else "8"
    else:  # seeded draws are numbered within a batch: one batch, as in the reference
        keras_file, X, batch_size, data = case.model_path, case.X, str(N_ROWS), case.data_path
    output = tmp_path / "out.npz"
    argv = ["explain", str(keras_file), str(data), "-o", str(output), "--explainer"]
    assert main([*argv, str(tmp_path / kind), "--batch-size", batch_size, "--no-progress"]) == 0
    target = np.argmax(explainer.model(X).numpy(), axis=1)
    expected = explainer.explain(X, target=target)
    assert_matches(
        output,
        {
            "attributions": expected.attributions[0],
            "deltas": expected.deltas,
            "predictions": expected.predictions,
            "target": expected.target,
        },
    )


@pytest.mark.parametrize(
    "n_rows, batch_size, actors, expected",
    [
        (200_000, 256, 1, 16 * 256),  # at most 16 batches per Ray block
        (20_000, 256, 2, 16 * 256),
        (5_000, 256, 2, 4 * 256),  # each actor keeps two blocks to work on
        (1_000, 256, 2, 256),  # never less than a batch
        (10, 256, 1, 256),
    ],
)
def test_ray_blocks_hold_whole_batches(n_rows, batch_size, actors, expected):
    from ig_plugin._batch.on_ray import block_rows

    rows = block_rows(n_rows, batch_size, actors)
    assert rows == expected and rows % batch_size == 0
