"""Explainers saved by an earlier release (0.1.0, commit 44b3774) still load and explain as they
did: through the explainers' own ``load`` and through ``alibi.saving.load_explainer``, which
unpickles with plain dill. The folders: ``tests/fixtures/saved_by_0.1.0/``; how they were made:
``tests/helpers/saved_explainers.py``."""

import sys
from pathlib import Path

import alibi.saving
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import saved_explainers
from saved_explainers import KINDS, SAVED_BY_0_1_0, build_model, explain

from ig_plugin import ExpectedGradients, IntegratedGradients, NoiseTunnel

CLASSES = {
    "target_fn": IntegratedGradients,
    "layer_index": IntegratedGradients,
    "layer_callable": IntegratedGradients,
    "expected_gradients": ExpectedGradients,
    "noise_tunnel": NoiseTunnel,
}


@pytest.fixture(scope="module")
def model():
    # Built again from code, as a deployment does: its automatic layer names are not the saved
    # model's.
    return build_model()


@pytest.mark.parametrize("how", ["own load", "alibi.saving"])
@pytest.mark.parametrize("kind", KINDS)
def test_an_explainer_saved_by_0_1_0_loads_and_explains_as_it_did(model, kind, how):
    folder = SAVED_BY_0_1_0 / kind
    if how == "own load":
        loaded = CLASSES[kind].load(folder, model)
    else:
        loaded = alibi.saving.load_explainer(folder, predictor=model)
    assert type(loaded) is CLASSES[kind]
    explanation = explain(loaded, kind)
    saved = np.load(folder / "explained.npz")
    np.testing.assert_allclose(explanation.attributions[0], saved["attributions"], atol=1e-5)
    np.testing.assert_allclose(explanation.deltas, saved["deltas"], atol=1e-5)


def test_the_fixtures_are_complete():
    assert sorted(p.name for p in SAVED_BY_0_1_0.iterdir()) == sorted(KINDS)
    assert saved_explainers.X.shape == (4, 6)
