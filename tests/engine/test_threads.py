"""Explainers and models shared between threads, as a server shares them.

Real threads, started together by a barrier and repeated, so that traces overlap: each round
builds fresh explainers, and a layer explainer hooks its layer only while it traces. Whatever the
threads do, every explanation equals the one computed alone, other callers of the model get the
model's own outputs, and nothing stays on the layer.
"""

import threading

import numpy as np
import pytest
from compat import keras
from concurrency import run_together
from models import seeded_floats, set_seeded_weights, subclassed_mlp

from ig_plugin import IntegratedGradients

ROUNDS = 6


def chain_model():
    inputs = keras.Input((6,))
    h = keras.layers.Dense(5, activation="tanh")(inputs)
    h = keras.layers.Dense(4, activation="tanh")(h)
    outputs = keras.layers.Dense(3, activation="softmax")(h)
    return set_seeded_weights(keras.Model(inputs, outputs), seed=4)


def nothing_left_on(model):
    for layer in model.layers:
        assert "call" not in vars(layer), f"{layer.name} keeps an instance `call`"


def test_two_layer_explainers_on_one_model():
    model = chain_model()
    X = seeded_floats((12, 6), seed=1)
    settings = [(model.layers[2], 1, False), (model.layers[1], 2, True)]
    expected = [
        IntegratedGradients(model, layer=layer).explain(
            X, target=target, attribute_to_layer_inputs=to_inputs
        )
        for layer, target, to_inputs in settings
    ]
    results: dict = {}

    def explain(i):
        layer, target, to_inputs = settings[i]
        explainer = IntegratedGradients(model, layer=layer, n_steps=50)
        results[i] = explainer.explain(X, target=target, attribute_to_layer_inputs=to_inputs)

    for _ in range(ROUNDS):
        results.clear()
        run_together([lambda i=i: explain(i) for i in range(2)])
        for i, explanation in results.items():
            np.testing.assert_allclose(
                explanation.attributions[0], expected[i].attributions[0], rtol=1e-5, atol=1e-7
            )
            np.testing.assert_allclose(explanation.deltas, expected[i].deltas, atol=1e-6)
        nothing_left_on(model)


def test_two_explainers_on_one_layer():
    model = chain_model()
    X = seeded_floats((7, 6), seed=2)
    expected = IntegratedGradients(model, layer=model.layers[2]).explain(X, target=0)
    results = []

    def explain():
        explainer = IntegratedGradients(model, layer=model.layers[2])
        results.append(explainer.explain(X, target=0).attributions[0])

    for _ in range(ROUNDS):
        results.clear()
        run_together([explain, explain, explain])
        assert len(results) == 3
        for attributions in results:
            np.testing.assert_allclose(attributions, expected.attributions[0], rtol=1e-5, atol=1e-7)
    nothing_left_on(model)


@pytest.mark.parametrize("kind", ["functional", "subclassed"])
def test_explain_while_another_thread_calls_the_model(kind):
    if kind == "functional":
        model, layer_fn = chain_model(), (lambda m: m.layers[2])
    else:
        model, layer_fn = subclassed_mlp(6, 5, 3, seed=5), (lambda m: m.hidden)
    X = seeded_floats((9, 6), seed=3)
    served = seeded_floats((5, 6), seed=4)
    expected_outputs = np.asarray(model(served))
    expected = IntegratedGradients(model, layer=layer_fn).explain(X, target=2)
    done = threading.Event()
    serving_calls = []

    def serve():
        while not done.is_set():
            outputs = np.asarray(model(served))
            np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-6)
            serving_calls.append(1)

    def explain():
        try:
            for _ in range(ROUNDS):
                explanation = IntegratedGradients(model, layer=layer_fn).explain(X, target=2)
                np.testing.assert_allclose(
                    explanation.attributions[0], expected.attributions[0], rtol=1e-5, atol=1e-7
                )
        finally:
            done.set()

    run_together([serve, explain])
    assert serving_calls, "the serving thread never ran"
    nothing_left_on(model)
    # The model's own calls are unchanged afterwards too.
    np.testing.assert_allclose(np.asarray(model(served)), expected_outputs, rtol=1e-6)


@pytest.mark.parametrize("layer_index", [None, 1], ids=["inputs", "layer"])
def test_one_explainer_shared_by_threads(layer_index):
    """A server's case: one explainer, requests of different sizes at once. Each round uses a
    fresh explainer, so that the first calls trace concurrently."""
    model = chain_model()

    def make():
        layer = None if layer_index is None else model.layers[layer_index]
        return IntegratedGradients(model, layer=layer, internal_batch_size=17)

    batches = [seeded_floats((n, 6), seed=n) for n in (1, 4, 9, 16)]
    reference = make()
    expected = [reference.explain(X, target=1).attributions[0] for X in batches]
    for _ in range(ROUNDS // 2):
        shared = make()
        results: dict = {}

        def explain(i, explainer=shared, results=results):
            results[i] = explainer.explain(batches[i], target=1).attributions[0]

        run_together([lambda i=i: explain(i) for i in range(len(batches))])
        for i, attributions in results.items():
            np.testing.assert_allclose(attributions, expected[i], rtol=1e-5, atol=1e-7)
    nothing_left_on(model)
