"""Targets on several outputs (heads) of one model from one forward pass per path point: equal to
one explain per head with ``output=``, laid out on one K axis in the order of the dict."""

import numpy as np
import pytest
from models import TwoOutputs, seeded_floats
from sequence_models import intent_and_tags, start_and_end, token_ids

from ig_plugin import ExpectedGradients, IntegratedGradients, NoiseTunnel

LENGTH = 8
IDS = token_ids((5, LENGTH), 20, seed=130)
HEADS = {"intent": [0, 2], "tags": [(1, 3), (6, 0), (1, 1)]}


@pytest.fixture(scope="module")
def tagger_model():
    return intent_and_tags(vocabulary=20, length=LENGTH, dim=6, seed=131)


def explainer_of(model, **settings):
    return IntegratedGradients(model, layer=model.get_layer("embedding"), **settings)


def assert_equal_to_one_call_per_head(explainer, X, heads, n_rows, **kwargs):
    """Column k of the one pass equals the k-th target of its head, explained alone."""
    together = explainer.explain(X, targets=heads, **kwargs)
    sizes = [len(targets) for targets in heads.values()]
    assert together.data["heads"] == [
        head for head, k in zip(heads, sizes, strict=True) for _ in range(k)
    ]
    assert together.deltas.shape == (n_rows, sum(sizes))
    column = 0
    for head, targets in heads.items():
        for target in targets:
            # A class index is one int per sample; a tuple one row per sample.
            per_sample = target if np.ndim(target) == 0 else np.tile(target, (n_rows, 1))
            alone = explainer.explain(X, target=per_sample, output=head)
            np.testing.assert_allclose(
                together.attributions[0][:, column], alone.attributions[0], rtol=1e-5, atol=1e-6
            )
            np.testing.assert_allclose(together.deltas[:, column], alone.deltas, atol=1e-5)
            np.testing.assert_array_equal(together.predictions[head], alone.predictions)
            column += 1
    return together


def test_intent_and_tags_in_one_pass(tagger_model):
    together = assert_equal_to_one_call_per_head(
        explainer_of(tagger_model, n_steps=10, internal_batch_size=11), IDS, HEADS, len(IDS)
    )
    assert together.attributions[0].shape == (5, 5, LENGTH, 6)
    assert set(together.target) == {"intent", "tags"}
    np.testing.assert_array_equal(together.target["intent"], np.tile([0, 2], (5, 1)))
    np.testing.assert_array_equal(together.target["tags"], np.tile(HEADS["tags"], (5, 1, 1)))


def test_the_dict_order_is_the_k_order(tagger_model):
    explainer = explainer_of(tagger_model, n_steps=6)
    forward = explainer.explain(IDS, targets=HEADS)
    backward = explainer.explain(IDS, targets={"tags": HEADS["tags"], "intent": HEADS["intent"]})
    assert backward.data["heads"] == ["tags"] * 3 + ["intent"] * 2
    np.testing.assert_allclose(
        backward.attributions[0], forward.attributions[0][:, [2, 3, 4, 0, 1]], rtol=1e-6
    )


def test_completeness_per_head(tagger_model):
    explanation = explainer_of(tagger_model, n_steps=64).explain(IDS, targets=HEADS)
    totals = explanation.attributions[0].sum(axis=(2, 3))
    changes = totals - explanation.deltas
    outputs = tagger_model(IDS)
    # The baseline is all id 0; the model is run on it to get F(x').
    starts = tagger_model(np.zeros_like(IDS))
    expected = np.concatenate(
        [
            np.asarray(outputs["intent"])[:, [0, 2]] - np.asarray(starts["intent"])[:, [0, 2]],
            np.stack(
                [
                    np.asarray(outputs["tags"])[:, p, c] - np.asarray(starts["tags"])[:, p, c]
                    for p, c in HEADS["tags"]
                ],
                axis=1,
            ),
        ],
        axis=1,
    )
    np.testing.assert_allclose(changes, expected, atol=1e-5)
    assert np.abs(explanation.deltas).max() < 1e-3


def test_start_and_end_logits_by_position():
    """A list of two (N, T) heads, named by position: the start and end of an answer."""
    model = start_and_end(vocabulary=20, length=LENGTH, dim=6, seed=132)
    explainer = explainer_of(model, n_steps=8)
    heads = {0: [2, 3], 1: [5]}
    together = assert_equal_to_one_call_per_head(explainer, IDS, heads, len(IDS))
    assert together.data["heads"] == [0, 0, 1]


def test_heads_of_a_subclassed_model_with_all_classes():
    model = TwoOutputs()
    X = seeded_floats((4, 3), seed=133)
    model(X)
    explainer = IntegratedGradients(model, n_steps=12)
    together = explainer.explain(X, targets={0: "all", 1: [1]})
    assert together.data["heads"] == [0, 0, 1]
    for column, (head, target) in enumerate([(0, 0), (0, 1), (1, 1)]):
        alone = explainer.explain(X, target=target, output=head)
        np.testing.assert_allclose(
            together.attributions[0][:, column], alone.attributions[0], rtol=1e-5, atol=1e-7
        )


def test_expected_gradients_and_noise_tunnel(tagger_model):
    layer = tagger_model.get_layer("embedding")
    background = token_ids((3, LENGTH), 20, seed=134)
    expected = ExpectedGradients(tagger_model, background, n_samples=6, seed=135, layer=layer)
    heads = {"intent": [1], "tags": [(0, 2)]}
    assert_equal_to_one_call_per_head(expected, IDS, heads, len(IDS))
    smooth = NoiseTunnel(explainer_of(tagger_model, n_steps=6), nt_samples=2, stdevs=0.0)
    smoothed = smooth.explain(IDS, targets=heads)
    assert smoothed.data["heads"] == ["intent", "tags"]
    assert set(smoothed.predictions) == {"intent", "tags"}


# --- errors --------------------------------------------------------------------------------------

ERRORS = {
    "with output": ({"targets": HEADS, "output": "tags"}, ValueError, "`output` must be None"),
    "empty": ({"targets": {}}, ValueError, "at least one output"),
    "a float key": ({"targets": {1.5: [0]}}, TypeError, r"keys of `targets`.*1\.5"),
    "a head's floats": (
        {"targets": {"intent": [0.5]}},
        TypeError,
        r"`targets\['intent'\]`: `targets` must hold integers",
    ),
    "with target": ({"targets": HEADS, "target": 0}, ValueError, "at most one of"),
}


@pytest.mark.parametrize("kwargs, error, match", ERRORS.values(), ids=ERRORS.keys())
def test_bad_heads_are_refused_before_the_model_runs(counting, kwargs, error, match):
    with pytest.raises(error, match=match):
        IntegratedGradients(counting).explain(seeded_floats((4, 3), seed=136), **kwargs)
    assert counting.calls == 0


def test_a_head_whose_targets_do_not_fit_is_named(tagger_model):
    explainer = explainer_of(tagger_model, n_steps=2)
    with pytest.raises(ValueError, match=r"`targets\['tags'\]`: .*out of range"):
        explainer.explain(IDS, targets={"intent": [0], "tags": [(LENGTH, 0)]})
    with pytest.raises(ValueError, match=r"`output` 'slots' names none of the model's 2 outputs"):
        explainer.explain(IDS, targets={"intent": [0], "slots": [(0, 0)]})
