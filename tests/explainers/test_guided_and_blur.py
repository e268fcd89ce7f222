"""What Guided IG and Blur IG both owe as explainers, each on the small CNN of their own test
modules (three 9 x 7 x 2 images): a save loads (by the class's own ``load`` and by
``alibi.saving``) into an explainer with the same metadata and the same attributions; one
explainer explains in many threads at once as it does alone; and NoiseTunnel without noise gives
the explainer's own attributions and deltas.

Each method's own behaviour (closed forms, agreement with PAIR saliency, bad settings) is in
``test_guided_integrated_gradients.py`` and ``test_blur_integrated_gradients.py``.
"""

from typing import Any, NamedTuple

import alibi.saving
import numpy as np
import pytest
from concurrency import run_together

from ig_plugin import BlurIntegratedGradients, GuidedIntegratedGradients, NoiseTunnel


class Case(NamedTuple):
    """One explainer class and the settings each test builds it with."""

    cls: type
    saved: dict[str, Any]  # the explainer saved and loaded: settings away from the defaults
    threaded: dict[str, Any]  # the explainer shared by threads
    smoothed: dict[str, Any]  # the explainer NoiseTunnel wraps
    smoothed_explain: dict[str, Any]  # explain's arguments beside target, in that test


CASES = {
    "guided": Case(
        GuidedIntegratedGradients,
        saved={"n_steps": 6, "fraction": 0.5, "max_dist": 0.1, "idgi": True},
        threaded={"n_steps": 10},
        smoothed={"n_steps": 8},
        smoothed_explain={"baselines": 0.1},
    ),
    "blur": Case(
        BlurIntegratedGradients,
        saved={"max_sigma": 8.0, "n_steps": 6, "sqrt": True, "idgi": True},
        threaded={"max_sigma": 5.0, "n_steps": 10, "internal_batch_size": 6},
        smoothed={"max_sigma": 4.0, "n_steps": 8},
        smoothed_explain={},  # Blur IG takes no baselines: its path ends at the blurred image
    ),
}


@pytest.fixture(params=list(CASES))
def case(request):
    return CASES[request.param]


@pytest.mark.parametrize("how", ["own load", "alibi.saving"])
def test_save_and_load(case, cnn, cnn_images, tmp_path, how):
    explainer = case.cls(cnn, **case.saved)
    before = explainer.explain(cnn_images, target=1).attributions[0]
    explainer.save(tmp_path)
    if how == "own load":
        loaded = case.cls.load(tmp_path, cnn)
    else:
        loaded = alibi.saving.load_explainer(tmp_path, predictor=cnn)
    assert type(loaded) is case.cls
    assert loaded.meta == explainer.meta
    np.testing.assert_array_equal(loaded.explain(cnn_images, target=1).attributions[0], before)


def test_one_explainer_in_many_threads(case, cnn, cnn_images):
    explainer = case.cls(cnn, **case.threaded)
    alone = explainer.explain(cnn_images, target=1).attributions[0]
    results = []
    run_together(
        [lambda: results.append(explainer.explain(cnn_images, target=1).attributions[0])] * 4
    )
    assert len(results) == 4
    for result in results:
        np.testing.assert_allclose(result, alone, rtol=1e-6, atol=1e-7)


def test_noise_tunnel_without_noise_is_the_explainer_itself(case, cnn, cnn_images):
    explainer = case.cls(cnn, **case.smoothed)
    tunnel = NoiseTunnel(explainer, nt_samples=2, stdevs=0.0)
    tunnel.validate(cnn_images, target=1)
    smoothed = tunnel.explain(cnn_images, target=1, **case.smoothed_explain)
    plain = explainer.explain(cnn_images, target=1, **case.smoothed_explain)
    np.testing.assert_allclose(smoothed.attributions[0], plain.attributions[0], rtol=1e-6)
    np.testing.assert_allclose(smoothed.deltas, plain.deltas, atol=1e-6)
