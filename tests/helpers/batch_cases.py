"""Files for the batch tests (command line and Ray): a saved model, data, and the reference.

The reference is an in-process ``explain`` of all rows at once; the batch paths must give the
same rows in the same order.
"""

import os
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import models
import numpy as np

from ig_plugin import IntegratedGradients

#: Rows of the test data: several batches of BATCH_SIZE and a shorter last one.
N_ROWS, N_FEATURES, BATCH_SIZE = 150, 4, 32
#: How close the batch outputs must be to the in-process explanation.
TOLERANCE = 1e-6
#: Bounded wait for one command-line run (a Ray run starts actors that import TensorFlow).
COMMAND_TIMEOUT_S = 300


@dataclass
class Case:
    """A saved classifier, its data as .npy, and the in-process explanation of that data."""

    model_path: Path
    data_path: Path
    X: np.ndarray
    model: object

    def reference(self, target=None, **explainer_args):
        """Arrays as the command line writes them, from one in-process ``explain``."""
        if target is None:
            explainer_args["target_fn"] = partial(np.argmax, axis=1)
        explanation = IntegratedGradients(self.model, **explainer_args).explain(
            self.X, target=target
        )
        return {
            "attributions": explanation.attributions[0],
            "deltas": explanation.deltas,
            "predictions": explanation.predictions,
            "target": explanation.target,
        }


def make_case(folder: Path) -> Case:
    """A softmax MLP over 3 classes whose predicted class varies from row to row."""
    model = models.functional_mlp(N_FEATURES, 6, 3, seed=4)
    model_path = folder / "model.keras"
    model.save(model_path)
    X = models.seeded_floats((N_ROWS, N_FEATURES), seed=5) * 2
    data_path = folder / "data.npy"
    np.save(data_path, X)
    return Case(model_path, data_path, X, model)


def assert_matches(output_path: Path, expected: dict, other_files=()) -> None:
    """OUT holds the expected arrays (rows in DATA's order) and, besides, only ``other_files``."""
    with np.load(output_path) as output:
        names = [name for name, values in expected.items() if values is not None]
        assert sorted(output.files) == sorted([*names, *other_files])
        for name, values in expected.items():
            if values is None:
                continue
            assert output[name].shape == values.shape, name
            np.testing.assert_allclose(output[name], values, rtol=TOLERANCE, atol=TOLERANCE)
            if name == "target":
                assert len(np.unique(values)) > 1  # so a row out of place would show


def run_command(*args, env=None, script=False, timeout=COMMAND_TIMEOUT_S):
    """``python -m ig_plugin ARGS`` (or the ``ig-plugin`` console script) in a new process."""
    console_script = Path(sys.executable).parent / "ig-plugin"
    program = [str(console_script)] if script else [sys.executable, "-m", "ig_plugin"]
    return subprocess.run(
        [*program, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
