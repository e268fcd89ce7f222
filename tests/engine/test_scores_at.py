"""``CompiledModel.scores_at``: the explained outputs at points the host chose, each point with its
sample's targets and forward_kwargs rows, equal to a forward pass and the host-side rule, whatever
the batch size."""

import numpy as np
import pytest
from models import GatedLinear, binary_model, functional_mlp, rank3_mlp, seeded_floats

from ig_plugin._engine.compiled import CompiledModel
from ig_plugin._engine.select import explained
from ig_plugin._request.forward_kwargs import ForwardKwargs
from ig_plugin._request.inputs import Layout
from ig_plugin._request.request import ModelCall
from ig_plugin._request.targets import target_rule

N = 5
NO_KWARGS = ForwardKwargs({}, {})
CALL = ModelCall(Layout("single"))
# Points in any order, several per sample, some samples left out.
SAMPLES = np.array([3, 0, 0, 4, 1, 3, 3])
POINTS = seeded_floats((len(SAMPLES), 4), seed=30)


def reference(model, rule, kwargs=NO_KWARGS):
    compiled = CompiledModel(model)
    per_point = ForwardKwargs({k: v[SAMPLES] for k, v in kwargs.per_sample.items()}, {})
    outputs, _ = compiled.forward((POINTS,), CALL, per_point, batch_size=100)
    return explained(rule.rows(SAMPLES), outputs)


CASES = {
    "regression": (lambda: binary_model(4, seed=31), None, (1,)),
    "binary": (lambda: binary_model(4, seed=32), np.array([1, 0, 1, 1, 0]), (1,)),
    "index": (lambda: functional_mlp(4, 5, 3, seed=33), np.array([2, 0, 1, 1, 2]), (3,)),
    "multi_index": (
        lambda: rank3_mlp(4, (2, 3), seed=34),
        np.array([[1, 2], [0, 0], [1, 1], [0, 2], [1, 0]]),
        (2, 3),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_scores_equal_a_forward_pass_and_the_rule(case, batch_size):
    build, target, output_shape = CASES[case]
    model = build()
    rule = target_rule(target, output_shape)
    compiled = CompiledModel(model)
    scores = compiled.scores_at((POINTS,), SAMPLES, (), NO_KWARGS, rule, CALL, batch_size)
    assert scores.shape == (len(SAMPLES),)
    np.testing.assert_allclose(scores, reference(model, rule), rtol=1e-6, atol=1e-7)


def test_forward_kwargs_rows_follow_their_samples():
    weights = seeded_floats((4, 2), seed=35)
    model = GatedLinear(weights)
    gates = seeded_floats((N, 4), seed=36)
    kwargs = ForwardKwargs({"gate": gates}, {})
    rule = target_rule(np.array([0, 1, 1, 0, 1]), (2,))
    scores = CompiledModel(model).scores_at((POINTS,), SAMPLES, (), kwargs, rule, CALL, 2)
    expected = ((POINTS * gates[SAMPLES]) @ weights)[np.arange(len(SAMPLES)), rule.target[SAMPLES]]
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
