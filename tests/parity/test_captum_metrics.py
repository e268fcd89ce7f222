"""Agreement with ``captum.metrics`` on one MLP built with the same weights in Keras and in PyTorch:
``infidelity`` (plain and normalized) and ``sensitivity_max`` of ig_plugin equal captum's when
both get the same perturbations.

Runs where torch and captum are installed (``make test-captum``); skipped elsewhere. TensorFlow is
imported before torch (conftest imports it): the other order crashed beside TensorFlow 2.21.

captum calls its ``perturb_func`` once on the N * n_perturb_samples expanded rows (sample-major,
``repeat_interleave``); ig_plugin calls its own once per sample with that sample's stream. The
tests record ig_plugin's perturbations and give captum a ``perturb_func`` that returns them.
"""

import numpy as np
import pytest
from models import functional_mlp, seeded_floats
from torch_twins import torch_mlp

from ig_plugin import IntegratedGradients
from ig_plugin.metrics import gaussian_noise, infidelity, sensitivity_max

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
captum_metrics = pytest.importorskip("captum.metrics")

N, FEATURES, CLASSES = 8, 4, 3
X = seeded_floats((N, FEATURES), seed=100)
TARGETS = np.array([0, 1, 2, 2, 1, 0, 1, 2])


@pytest.fixture(scope="module")
def twins():
    keras_model = functional_mlp(FEATURES, 5, CLASSES, seed=101)
    torch_model = torch_mlp(keras_model)
    np.testing.assert_allclose(
        torch_model(torch.from_numpy(X)).detach().numpy(), keras_model(X).numpy(), atol=1e-6
    )
    return keras_model, torch_model


class Recorded:
    """A perturb_fn that records every (I, perturbed) it returns, in call order."""

    def __init__(self, perturb_fn):
        self.perturb_fn, self.perturbations, self.perturbed = perturb_fn, [], []

    def __call__(self, rows, rng):
        perturbation, perturbed = self.perturb_fn(rows, rng)
        self.perturbations.append(perturbation)
        self.perturbed.append(perturbed)
        return perturbation, perturbed

    def replay(self, n_rows):
        """captum's perturb_func: the recorded perturbations of all samples at once."""
        perturbations = torch.from_numpy(np.concatenate(self.perturbations).astype("float32"))
        perturbed = torch.from_numpy(np.concatenate(self.perturbed))

        def perturb_func(inputs):
            assert inputs.shape[0] == n_rows, "captum asked for another number of rows"
            return perturbations, perturbed

        return perturb_func


def masks(rows, rng):
    mask = rng.integers(0, 2, size=rows.shape).astype(rows.dtype)
    return mask, rows - mask * rows


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("perturbation", ["noise", "masks"])
def test_infidelity_equals_captums(twins, normalize, perturbation):
    keras_model, torch_model = twins
    n_perturb = 6
    attributions = IntegratedGradients(keras_model).explain(X, target=TARGETS).attributions[0]
    recorded = Recorded(gaussian_noise(0.3) if perturbation == "noise" else masks)
    ours = infidelity(
        keras_model, X, attributions, TARGETS, recorded, n_perturb, normalize=normalize, seed=7
    )
    theirs = captum_metrics.infidelity(
        torch_model,
        recorded.replay(N * n_perturb),
        torch.from_numpy(X),
        torch.from_numpy(attributions),
        target=torch.from_numpy(TARGETS),
        n_perturb_samples=n_perturb,
        normalize=normalize,
    )
    # captum sums in float32; normalized, its beta**2 * a - 2 * beta * b + c cancels digits.
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=5e-4 if normalize else 2e-5)
    assert (ours > 1e-6).all()  # the comparison is not of zeros


@pytest.mark.parametrize("norm_ord", ["fro", 1.0])
def test_sensitivity_max_equals_captums(twins, norm_ord):
    keras_model, torch_model = twins
    explainer = IntegratedGradients(keras_model)  # Gauss-Legendre, 50 steps: captum's defaults
    n_perturb, radius = 5, 0.1
    copies = []

    def explain_fn(rows, target):
        if len(rows) > N:  # the perturbed copies (the first call explains X itself)
            copies.append(rows)
        return explainer.explain(rows, target=target)

    ours = sensitivity_max(explain_fn, X, TARGETS, radius, n_perturb, norm_ord, seed=8)
    perturbed = torch.from_numpy(np.concatenate(copies))

    def replay(inputs, perturb_radius):
        assert inputs.shape[0] == N * n_perturb and perturb_radius == radius
        return perturbed

    ig = captum_attr.IntegratedGradients(torch_model)
    theirs = captum_metrics.sensitivity_max(
        ig.attribute,
        torch.from_numpy(X),
        perturb_func=replay,
        perturb_radius=radius,
        n_perturb_samples=n_perturb,
        norm_ord="fro" if norm_ord == "fro" else 1,
        target=torch.from_numpy(TARGETS),
    )
    # IG agrees to about 1e-6; the changes it is divided into are about 1e-2 of it.
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-4)
    assert (ours > 1e-3).all()
