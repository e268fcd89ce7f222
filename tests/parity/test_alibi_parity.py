"""Parity with alibi's IntegratedGradients, run side by side in this process.

alibi is right about attributions except for riemann_trapezoid (bug 11), and about deltas
except for single-output models with a target (bug 1); those cases are tested elsewhere.
"""

from functools import partial

import numpy as np
import pytest
from alibi.explainers import IntegratedGradients as AlibiIntegratedGradients
from models import METHODS, functional_mlp, multi_input_mlp, rank3_mlp, seeded_floats

from ig_plugin import IntegratedGradients

RTOL, ATOL = 1e-5, 1e-7


def both(model, X, explainer_kwargs=None, **explain_kwargs):
    explainer_kwargs = explainer_kwargs or {}
    ours = IntegratedGradients(model, **explainer_kwargs).explain(X, **explain_kwargs)
    theirs = AlibiIntegratedGradients(model, **explainer_kwargs).explain(X, **explain_kwargs)
    return ours, theirs


def assert_same_attributions(ours, theirs, rtol=RTOL):
    assert len(ours.attributions) == len(theirs.attributions)
    for got, expected in zip(ours.attributions, theirs.attributions, strict=True):
        assert got.shape == expected.shape
        scale = np.abs(expected).max()
        assert scale > 1e-4, "parity on all-zero attributions proves nothing"
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=ATOL + rtol * scale)


def assert_same_deltas(ours, theirs):
    np.testing.assert_allclose(ours.deltas, theirs.deltas, atol=1e-5)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "riemann_trapezoid"])
def test_methods(mlp, mlp_data, method):
    ours, theirs = both(mlp, mlp_data, {"method": method, "n_steps": 8}, target=2)
    assert_same_attributions(ours, theirs)
    assert_same_deltas(ours, theirs)


def test_trapezoid_differs_by_alibis_weight_sum(mlp, mlp_data):
    """alibi bug 11, seen end to end: alibi's trapezoid drops weight 1/n in total."""
    n_steps = 8
    ours, theirs = both(
        mlp, mlp_data, {"method": "riemann_trapezoid", "n_steps": n_steps}, target=0
    )
    assert not np.allclose(ours.attributions[0], theirs.attributions[0], rtol=1e-3)
    # ours is complete, alibi's is not
    assert np.abs(ours.deltas).max() < np.abs(theirs.deltas).max()


def test_per_sample_targets(mlp, mlp_data):
    target = np.array([0, 1, 2, 2, 1, 0])
    ours, theirs = both(mlp, mlp_data, {"n_steps": 10}, target=target)
    assert_same_attributions(ours, theirs)
    assert_same_deltas(ours, theirs)


def test_target_list(mlp, mlp_data):
    ours, theirs = both(mlp, mlp_data, {"n_steps": 10}, target=[2, 2, 1, 1, 0, 0])
    assert_same_attributions(ours, theirs)


def test_target_fn(mlp, mlp_data):
    ours, theirs = both(mlp, mlp_data, {"n_steps": 10, "target_fn": partial(np.argmax, axis=1)})
    assert_same_attributions(ours, theirs)
    assert_same_deltas(ours, theirs)
    np.testing.assert_array_equal(ours.target, theirs.target)


@pytest.mark.parametrize("kind", ["number", "array"])
def test_baselines(mlp, mlp_data, kind):
    baselines = 0.7 if kind == "number" else seeded_floats(mlp_data.shape, seed=40)
    ours, theirs = both(mlp, mlp_data, {"n_steps": 10}, baselines=baselines, target=1)
    assert_same_attributions(ours, theirs)
    assert_same_deltas(ours, theirs)


def test_multi_input():
    model = multi_input_mlp(seed=41)
    X = [seeded_floats((4, 3), seed=42), seeded_floats((4, 2), seed=43)]
    baselines = [seeded_floats((4, 3), seed=44), seeded_floats((4, 2), seed=45)]
    ours, theirs = both(model, X, {"n_steps": 10}, baselines=baselines, target=[0, 1, 2, 0])
    assert_same_attributions(ours, theirs)
    assert_same_deltas(ours, theirs)


def test_rank3_output():
    model = rank3_mlp(4, (2, 3), seed=46)
    X = seeded_floats((5, 4), seed=47)
    target = np.array([[0, 0], [1, 2], [0, 1], [1, 0], [1, 1]])
    ours, theirs = both(model, X, {"n_steps": 10}, target=target)
    assert_same_attributions(ours, theirs)
    assert_same_deltas(ours, theirs)


@pytest.mark.parametrize("internal_batch_size", [1, 7, 1000])
def test_internal_batch_size(mlp, mlp_data, internal_batch_size):
    ours, theirs = both(
        mlp, mlp_data, {"n_steps": 6, "internal_batch_size": internal_batch_size}, target=1
    )
    assert_same_attributions(ours, theirs)


def test_regression(mlp_data):
    model = functional_mlp(4, 5, 1, seed=48, activation=None)
    ours, theirs = both(model, mlp_data, {"n_steps": 10})
    assert_same_attributions(ours, theirs)
    assert_same_deltas(ours, theirs)


def test_meta_and_data_keys_match_alibi(mlp, mlp_data):
    ours, theirs = both(mlp, mlp_data, {"n_steps": 4}, target=1)
    assert set(ours.meta) == set(theirs.meta)
    assert set(ours.meta["params"]) == set(theirs.meta["params"])
    assert set(ours.data) == set(theirs.data)
    for key in ("name", "type", "explanations", "version"):
        assert ours.meta[key] == theirs.meta[key]
    assert ours.meta["params"] == theirs.meta["params"]
    assert ours.deltas.shape == theirs.deltas.shape == (len(mlp_data),)
    assert isinstance(ours.attributions, list) and isinstance(theirs.attributions, list)
    np.testing.assert_allclose(ours.predictions, theirs.predictions, rtol=1e-6)
    np.testing.assert_array_equal(ours.baselines, theirs.baselines)
    assert ours.forward_kwargs == theirs.forward_kwargs == {}
