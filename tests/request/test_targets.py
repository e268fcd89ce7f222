"""The target rule: which scalar of the model output is explained, for each sample."""

import json
import warnings
from functools import partial

import numpy as np
import pytest
from alibi.explainers import IntegratedGradients as AlibiIntegratedGradients
from models import binary_model, linear_model, linear_rank3_model, seeded_floats

from ig_plugin import IntegratedGradients


@pytest.fixture(scope="module")
def linear_explainer(linear):
    return IntegratedGradients(linear, n_steps=2)


# --- vector outputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [1, np.int64(1), np.int32(1), [1] * 5, (1,) * 5, np.ones(5, dtype=np.int64)],
    ids=["int", "np.int64", "np.int32", "list", "tuple", "array"],
)
def test_same_target_given_every_way(linear_explainer, linear_weights, linear_data, target):
    """Every spelling of 'class 1 for every sample' (np.int64 and tuple: alibi bug 8)."""
    explanation = linear_explainer.explain(linear_data, target=target)
    np.testing.assert_allclose(
        explanation.attributions[0], linear_weights[:, 1] * linear_data, rtol=1e-5, atol=1e-7
    )
    np.testing.assert_array_equal(explanation.target, np.ones(5))


@pytest.mark.parametrize("container", [list, tuple, np.array])
def test_per_sample_targets(linear_explainer, linear_weights, linear_data, container):
    targets = [0, 1, 1, 0, 1]
    explanation = linear_explainer.explain(linear_data, target=container(targets))
    expected = linear_weights[:, targets].T * linear_data
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(explanation.target, targets)


def test_target_fn_equals_argmax_targets(mlp, mlp_data):
    argmax = np.argmax(np.asarray(mlp(mlp_data)), axis=1)
    assert len(set(argmax.tolist())) > 1, "the fixture should predict several classes"
    with_fn = IntegratedGradients(mlp, target_fn=partial(np.argmax, axis=1), n_steps=10).explain(
        mlp_data
    )
    with_target = IntegratedGradients(mlp, n_steps=10).explain(mlp_data, target=argmax)
    np.testing.assert_allclose(with_fn.attributions[0], with_target.attributions[0], rtol=1e-6)
    np.testing.assert_array_equal(with_fn.target, argmax)
    np.testing.assert_array_equal(with_fn.data["target"], argmax)


def test_target_fn_is_json_safe(mlp, mlp_data):
    """alibi stores the callable in meta, so its to_json fails (alibi bug 12)."""
    explainer = IntegratedGradients(mlp, target_fn=partial(np.argmax, axis=1), n_steps=3)
    explanation = explainer.explain(mlp_data)
    described = explanation.meta["params"]["target_fn"]
    assert isinstance(described, str) and "argmax" in described
    json.dumps(explainer.meta)
    loaded = json.loads(explanation.to_json())
    assert loaded["meta"]["params"]["target_fn"] == described
    np.testing.assert_allclose(
        np.asarray(loaded["data"]["attributions"][0]), explanation.attributions[0], rtol=1e-6
    )


def test_ragged_target_names_the_argument(linear_explainer, linear_data):
    with pytest.raises(ValueError, match="`target`"):
        linear_explainer.explain(linear_data, target=[0, [1, 0], 1, 0, 1])


def test_data_target_holds_the_targets_used(linear_explainer, linear_data):
    explanation = linear_explainer.explain(linear_data, target=1)
    assert explanation.data["target"].shape == (5,)
    assert explanation.data["target"].tolist() == [1] * 5


# --- single-output (sigmoid) classifiers ---------------------------------------------------------


@pytest.fixture(scope="module", params=[False, True], ids=["(N,1)", "(N,)"])
def binary(request):
    return binary_model(3, seed=3, squeeze=request.param)


@pytest.fixture(scope="module")
def binary_data():
    return seeded_floats((5, 3), seed=4)


def test_binary_output_shapes(binary, binary_data):
    output = np.asarray(binary(binary_data))
    assert output.shape in ((5,), (5, 1))


def test_binary_targets_flip_sign_and_are_complete(binary, binary_data):
    explainer = IntegratedGradients(binary, n_steps=30)
    one = explainer.explain(binary_data, target=1)
    zero = explainer.explain(binary_data, target=0)
    np.testing.assert_allclose(one.attributions[0], -zero.attributions[0], rtol=1e-5, atol=1e-7)
    # target 1 explains p, target 0 explains 1 - p
    p = np.asarray(binary(binary_data)).reshape(-1).astype(np.float64)
    p0 = np.asarray(binary(np.zeros_like(binary_data))).reshape(-1)
    np.testing.assert_allclose(one.attributions[0].sum(axis=1), p - p0, atol=1e-5)
    np.testing.assert_allclose(zero.attributions[0].sum(axis=1), p0 - p, atol=1e-5)
    assert np.abs(one.deltas).max() < 1e-5
    assert np.abs(zero.deltas).max() < 1e-5
    assert np.abs(p - p0).min() > 1e-3, "the fixture should have non-trivial gaps"


def test_binary_mixed_targets(binary, binary_data):
    explainer = IntegratedGradients(binary, n_steps=30)
    targets = np.array([1, 0, 1, 0, 0])
    mixed = explainer.explain(binary_data, target=targets).attributions[0]
    ones = explainer.explain(binary_data, target=1).attributions[0]
    sign = np.where(targets == 1, 1.0, -1.0)[:, None]
    np.testing.assert_allclose(mixed, sign * ones, rtol=1e-5, atol=1e-7)


def test_target_fn_on_a_single_output_warns(binary, binary_data):
    """argmax over one column is always 0, so the README's target_fn explains 1 - p: alibi
    warns about a target_fn on scalar predictions, and so must we."""
    explainer = IntegratedGradients(binary, n_steps=10, target_fn=partial(np.argmax, axis=-1))
    with pytest.warns(UserWarning, match=r"single output.*`target_fn` chose target 0 \(which"):
        explanation = explainer.explain(binary_data)
    if binary.output_shape == (None, 1):
        np.testing.assert_array_equal(explanation.target, np.zeros(5))
    explicit = IntegratedGradients(binary, n_steps=10).explain(
        binary_data, target=explanation.target
    )
    np.testing.assert_allclose(explanation.attributions[0], explicit.attributions[0], rtol=1e-6)


def test_no_warning_for_targets_or_vector_outputs(binary, binary_data, mlp, mlp_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        IntegratedGradients(binary, n_steps=2).explain(binary_data, target=1)
        IntegratedGradients(binary, n_steps=2).explain(binary_data)  # regression
        IntegratedGradients(mlp, n_steps=2, target_fn=partial(np.argmax, axis=1)).explain(mlp_data)


def test_binary_deltas_fix_alibi_bug_1(binary_data):
    model = binary_model(3, seed=3)
    ours = IntegratedGradients(model, n_steps=30).explain(binary_data, target=1)
    theirs = AlibiIntegratedGradients(model, n_steps=30).explain(binary_data, target=1)
    # same attributions ...
    np.testing.assert_allclose(ours.attributions[0], theirs.attributions[0], rtol=1e-4, atol=1e-6)
    # ... but only ours have deltas that close the completeness gap
    assert np.abs(ours.deltas).max() < 1e-5
    assert np.abs(theirs.deltas).max() > 1e-3


def test_regression_without_target_explains_the_output(binary, binary_data):
    explanation = IntegratedGradients(binary, n_steps=30).explain(binary_data, baselines=0.5)
    p = np.asarray(binary(binary_data)).reshape(-1)
    p0 = np.asarray(binary(np.full_like(binary_data, 0.5))).reshape(-1)
    np.testing.assert_allclose(explanation.attributions[0].sum(axis=1), p - p0, atol=1e-5)
    assert np.abs(explanation.deltas).max() < 1e-5
    assert explanation.target is None
    # regression explains p itself: same as target 1
    with_target = IntegratedGradients(binary, n_steps=30).explain(
        binary_data, baselines=0.5, target=1
    )
    np.testing.assert_allclose(explanation.attributions[0], with_target.attributions[0], rtol=1e-6)


def test_regression_on_linear_model(binary_data):
    weights = np.array([[2.0], [-1.0], [0.5]], dtype="float32")
    explanation = IntegratedGradients(linear_model(weights), n_steps=2).explain(binary_data)
    np.testing.assert_allclose(
        explanation.attributions[0], weights[:, 0] * binary_data, rtol=1e-5, atol=1e-7
    )


# --- outputs of rank 3 ---------------------------------------------------------------------------


def test_rank3_output_selects_the_indexed_element():
    rng = np.random.default_rng(5)
    weights = rng.normal(size=(4, 6)).astype("float32")
    model = linear_rank3_model(weights, (2, 3))
    X = seeded_floats((5, 4), seed=6)
    target = np.array([[0, 0], [0, 2], [1, 1], [1, 2], [0, 1]])
    explanation = IntegratedGradients(model, n_steps=2).explain(X, target=target)
    columns = target[:, 0] * 3 + target[:, 1]  # flat index of output[i, t0, t1]
    expected = weights[:, columns].T * X
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(explanation.target, target)
    assert np.abs(explanation.deltas).max() < 1e-5
