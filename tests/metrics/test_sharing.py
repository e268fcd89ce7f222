"""What the metrics share between calls and threads: the compiled passes of a model (traced once,
released with the model), and nothing that threads scoring one model at once could disturb. And
``import ig_plugin.metrics`` stays cheap."""

import gc
import subprocess
import sys
import weakref

import numpy as np
from concurrency import run_together
from models import CountingModel, functional_mlp, seeded_floats

from ig_plugin import IntegratedGradients
from ig_plugin.metrics import deletion, infidelity, insertion, mu_fidelity, sensitivity_max

X = seeded_floats((12, 4), seed=90)
A = seeded_floats((12, 4), seed=91)
TARGET = np.arange(12) % 3


def test_the_compiled_passes_are_traced_once_per_model():
    model = CountingModel(4, 3)
    deletion(model, X, A, TARGET, steps=4)
    traced = model.calls  # the Python call runs only while tracing
    assert traced > 0
    insertion(model, X, A, TARGET, steps=7, batch_size=5)
    infidelity(model, X, A, TARGET, seed=0)
    mu_fidelity(model, X, A, TARGET, subset_percent=0.5, seed=0)
    assert model.calls == traced


def test_the_model_is_released_with_its_compiled_passes():
    model = functional_mlp(4, 5, 3, seed=92)
    deletion(model, X, A, TARGET)
    released = weakref.ref(model)
    del model
    gc.collect()
    assert released() is None


def test_threads_scoring_one_model_at_once_get_the_serial_results():
    model = functional_mlp(4, 5, 3, seed=93)
    explainer = IntegratedGradients(model, n_steps=8)

    def run_all(batch_size):
        return [
            deletion(model, X, A, TARGET, steps=5, batch_size=batch_size).scores,
            infidelity(model, X, A, TARGET, seed=1, batch_size=batch_size),
            mu_fidelity(model, X, A, TARGET, subset_percent=0.5, seed=1, batch_size=batch_size),
            sensitivity_max(explainer, X, TARGET, seed=1, batch_size=batch_size),
        ]

    expected = run_all(64)
    results = {}

    def task(index):
        def run():
            results[index] = run_all(batch_size=3 + index)

        return run

    run_together([task(index) for index in range(4)])
    for index in range(4):
        for got, want in zip(results[index], expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_importing_the_metrics_imports_no_tensorflow():
    code = (
        "import sys, ig_plugin.metrics, ig_plugin.metrics._checks\n"
        "names = dir(ig_plugin.metrics)\n"
        "assert 'deletion' in names, names\n"
        "assert 'tensorflow' not in sys.modules, 'imported tensorflow'\n"
        "assert 'keras' not in sys.modules, 'imported keras'\n"
        "assert 'alibi' not in sys.modules, 'imported alibi'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
