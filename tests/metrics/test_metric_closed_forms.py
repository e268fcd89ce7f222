"""The metrics' values proven by closed forms on linear models, whose outputs numpy computes.

``F(x) = x @ W + b``: deletion and insertion curves are numpy sums over the features left;
infidelity is 0 for the gradient with any perturbation and for IG from 0 with mask
perturbations; max-sensitivity of IG from 0 is ``norm(w * d) / norm(w * x)``; MuFidelity of
exact attributions is 1 (and -1 for their negation).
"""

import numpy as np
import pytest
from compat import keras
from models import linear_multi_input_model, seeded_floats
from scipy.integrate import trapezoid

from ig_plugin import IntegratedGradients
from ig_plugin.metrics import (
    deletion,
    gaussian_noise,
    infidelity,
    insertion,
    mu_fidelity,
    sensitivity_max,
)

WEIGHTS = np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25], [2.0, -0.5]], dtype="float32")
BIAS = np.array([0.3, -0.7], dtype="float32")
N, D = 6, 4
X = seeded_floats((N, D), seed=40)
TARGET = np.array([0, 1, 1, 0, 1, 0])


def dense_model(weights, bias, shape):
    """``F(x) = flatten(x) @ weights + bias`` on inputs of ``shape``."""
    inputs = keras.Input(shape)
    flat = keras.layers.Flatten()(inputs) if len(shape) > 1 else inputs
    dense = keras.layers.Dense(weights.shape[1])
    model = keras.Model(inputs, dense(flat))
    dense.set_weights([weights, bias])
    return model


@pytest.fixture(scope="module")
def affine():
    return dense_model(WEIGHTS, BIAS, (D,))


def f(x, target):
    """The affine model in numpy, in float64."""
    return x.reshape(len(x), -1).astype(np.float64) @ WEIGHTS[:, target] + BIAS[target]


def ig_from(baseline):
    """IG of the affine model from ``baseline``: ``w * (x - baseline)`` per target."""
    return WEIGHTS[:, TARGET].T * (X - baseline)


# --- deletion and insertion --------------------------------------------------------------------


def expected_curve(x, a, target, baseline, steps, delete):
    """One sample's curve by numpy: the features ranked by -a (stable), k * D // steps moved."""
    order = np.argsort(-a.ravel(), kind="stable")
    scores = []
    for k in range(steps + 1):
        moved = order[: k * a.size // steps]
        point = (x if delete else baseline).ravel().copy()
        point[moved] = (baseline if delete else x).ravel()[moved]
        scores.append(f(point[np.newaxis], target)[0])
    return np.array(scores)


@pytest.mark.parametrize("curve", [deletion, insertion])
@pytest.mark.parametrize("steps", [1, 3, 4, 7])
def test_curves_of_a_linear_model_are_numpy_sums(affine, curve, steps):
    baseline = seeded_floats((1, D), seed=41)
    # Rounded attributions tie often: ties must go to the lower feature index.
    attributions = np.round(seeded_floats((N, D), seed=42), 0)
    result = curve(affine, X, attributions, TARGET, baseline=baseline, steps=steps)
    delete = curve is deletion
    for i in range(N):
        expected = expected_curve(X[i], attributions[i], TARGET[i], baseline[0], steps, delete)
        np.testing.assert_allclose(result.scores[i], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.fractions, np.arange(steps + 1) / steps)
    np.testing.assert_allclose(result.auc, trapezoid(result.scores, result.fractions, axis=1))
    assert result.scores.shape == (N, steps + 1)


def test_deletion_of_exact_attributions_falls_fastest(affine):
    """Deleting in IG's order removes the largest contributions first: its curve lies below the
    curve of the reversed order at every step."""
    exact = ig_from(0.0)
    best = deletion(affine, X, exact, TARGET, steps=D)
    worst = deletion(affine, X, -exact, TARGET, steps=D)
    assert (best.scores <= worst.scores + 1e-6).all()
    assert (best.auc < worst.auc).all()


def test_images_are_ranked_and_deleted_by_pixel():
    """An image's pixel goes with all its channels, ranked by the sum of their attributions."""
    rng = np.random.default_rng(43)
    shape = (3, 3, 2)
    weights = rng.normal(size=(18, 2)).astype("float32")
    model = dense_model(weights, np.zeros(2, "float32"), shape)
    images = rng.normal(size=(2, *shape)).astype("float32")
    attributions = rng.normal(size=(2, *shape)).astype("float32")
    target = np.array([1, 0])
    steps = 3
    result = deletion(model, images, attributions, target, baseline=0.0, steps=steps)
    for i in range(2):
        order = np.argsort(-attributions[i].sum(-1).ravel(), kind="stable")
        for k in range(steps + 1):
            kept = images[i].reshape(9, 2).copy()
            kept[order[: k * 9 // steps]] = 0.0
            expected = kept.ravel().astype(np.float64) @ weights[:, target[i]]
            np.testing.assert_allclose(result.scores[i, k], expected, rtol=1e-5, atol=1e-5)


def test_several_inputs_are_ranked_together():
    weights_a, weights_b = WEIGHTS[:3], WEIGHTS[3:]
    model = linear_multi_input_model(weights_a, weights_b)
    a, b = X[:, :3], X[:, 3:]
    attributions = seeded_floats((N, D), seed=44)
    result = insertion(model, [a, b], [attributions[:, :3], attributions[:, 3:]], TARGET, steps=4)
    for i in range(N):
        expected = expected_curve(X[i], attributions[i], TARGET[i], np.zeros(D), 4, False)
        np.testing.assert_allclose(result.scores[i], expected - BIAS[TARGET[i]], atol=1e-5)


def test_an_explanation_brings_its_targets(affine):
    explanation = IntegratedGradients(affine).explain(X, target=TARGET)
    from_explanation = deletion(affine, X, explanation)
    given = deletion(affine, X, explanation.attributions[0], TARGET)
    np.testing.assert_array_equal(from_explanation.scores, given.scores)


@pytest.mark.parametrize("batch_size", [1, 5, 1000])
def test_curves_do_not_depend_on_the_batch_size(affine, batch_size):
    attributions = ig_from(0.0)
    reference = insertion(affine, X, attributions, TARGET, steps=5)
    batched = insertion(affine, X, attributions, TARGET, steps=5, batch_size=batch_size)
    np.testing.assert_allclose(batched.scores, reference.scores, rtol=1e-6, atol=1e-6)


# --- infidelity --------------------------------------------------------------------------------


def masks(rows, rng):
    """Captum's global perturbation: I a 0/1 mask in units of the features, x - I * x."""
    mask = rng.integers(0, 2, size=rows.shape).astype(rows.dtype)
    return mask, rows - mask * rows


def test_infidelity_of_ig_from_zero_with_masks_is_zero(affine):
    values = infidelity(affine, X, ig_from(0.0), TARGET, perturb_fn=masks, seed=1)
    np.testing.assert_allclose(values, 0.0, atol=1e-9)
    # The control: the same perturbations do tell attributions that are wrong.
    wrong = infidelity(affine, X, ig_from(0.0)[:, ::-1], TARGET, perturb_fn=masks, seed=1)
    assert (wrong > 1e-3).all()


def masked_displacements(rows, rng):
    """I = m * x: the features a 0/1 mask picks are set to 0, and I is the displacement."""
    displacement = rng.integers(0, 2, size=rows.shape).astype(rows.dtype) * rows
    return displacement, rows - displacement


@pytest.mark.parametrize("perturb_fn", [None, gaussian_noise(2.0), masked_displacements])
def test_infidelity_of_the_gradient_is_zero_for_any_perturbation(affine, perturb_fn):
    gradients = np.ascontiguousarray(WEIGHTS[:, TARGET].T)
    values = infidelity(affine, X, gradients, TARGET, perturb_fn=perturb_fn, seed=2)
    np.testing.assert_allclose(values, 0.0, atol=1e-9)


class Recording:
    """A perturb_fn that records what it was given and what it returned."""

    def __init__(self, perturb_fn):
        self.perturb_fn, self.rows, self.perturbations = perturb_fn, [], []

    def __call__(self, rows, rng):
        perturbation, perturbed = self.perturb_fn(rows, rng)
        self.rows.append(rows.copy())
        self.perturbations.append(perturbation.astype(np.float64))
        return perturbation, perturbed


@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_is_the_mean_squared_error_of_the_prediction(affine, normalize):
    n_perturb = 7
    attributions = ig_from(0.0)
    recording = Recording(gaussian_noise(0.5))
    values = infidelity(
        affine, X, attributions, TARGET, recording, n_perturb, normalize=normalize, seed=3
    )
    assert len(recording.rows) == N  # once per sample, with its n_perturb copies
    for i, (rows, perturbation) in enumerate(
        zip(recording.rows, recording.perturbations, strict=True)
    ):
        np.testing.assert_array_equal(rows, np.repeat(X[i : i + 1], n_perturb, axis=0))
        predicted = perturbation @ attributions[i]
        change = perturbation @ WEIGHTS[:, TARGET[i]]  # F(x) - F(x - I) of the affine model
        beta = (predicted @ change) / (predicted @ predicted) if normalize else 1.0
        expected = np.mean((beta * predicted - change) ** 2)
        np.testing.assert_allclose(values[i], expected, rtol=1e-4)
    assert (values > 1e-4).all()


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_seeded_infidelity_does_not_depend_on_the_batch_size(affine, batch_size):
    reference = infidelity(affine, X, ig_from(0.0), TARGET, seed=4)
    batched = infidelity(affine, X, ig_from(0.0), TARGET, seed=4, batch_size=batch_size)
    np.testing.assert_allclose(batched, reference, rtol=1e-6)
    assert not np.allclose(infidelity(affine, X, ig_from(0.0), TARGET, seed=5), reference)


# --- max-sensitivity ---------------------------------------------------------------------------


@pytest.mark.parametrize("norm_ord", ["fro", 1, np.inf])
def test_sensitivity_max_of_ig_from_zero(affine, norm_ord):
    """IG from 0 of the affine model is ``w * x``, so the ratio is ``norm(w * d) / norm(w * x)``,
    with d the perturbations: an explain_fn that computes the closed form records them."""
    order = 2 if norm_ord == "fro" else norm_ord
    seen = []

    def closed_form(rows, target):
        seen.append((rows.copy(), np.asarray(target).copy()))
        return WEIGHTS[:, target].T * rows

    radius, n_perturb = 0.1, 5
    recorded = sensitivity_max(closed_form, X, TARGET, radius, n_perturb, norm_ord, seed=6)
    originals, copies = seen[0][0], np.concatenate([rows for rows, _ in seen[1:]])
    np.testing.assert_array_equal(originals, X)
    np.testing.assert_array_equal(seen[1][1], np.repeat(TARGET, n_perturb))
    d = copies.astype(np.float64) - np.repeat(X, n_perturb, axis=0)
    assert np.abs(d).max() <= radius + 1e-6
    w = np.repeat(WEIGHTS[:, TARGET].T, n_perturb, axis=0)
    ratios = np.linalg.norm(w * d, ord=order, axis=1) / np.repeat(
        np.linalg.norm(WEIGHTS[:, TARGET].T * X, ord=order, axis=1), n_perturb
    )
    np.testing.assert_allclose(recorded, ratios.reshape(N, n_perturb).max(axis=1), rtol=1e-5)
    # The explainer itself, on the same draws (they depend only on the seed, X, radius and count).
    explained = sensitivity_max(
        IntegratedGradients(affine), X, TARGET, radius, n_perturb, norm_ord, seed=6, batch_size=4
    )
    np.testing.assert_allclose(explained, recorded, rtol=1e-4)


def test_sensitivity_of_layer_attributions(affine):
    """Attributions to a layer: the norms run over the layer's values. With a radius of 0 the
    copies are X itself, so their attributions move by rounding only."""
    explainer = IntegratedGradients(affine, layer=affine.layers[1])
    still = sensitivity_max(explainer, X, TARGET, perturb_radius=0.0, seed=0)
    np.testing.assert_allclose(still, 0.0, atol=1e-5)
    moved = sensitivity_max(explainer, X, TARGET, perturb_radius=0.5, seed=0)
    assert moved.shape == (N,)
    assert (moved > 1e-3).all()


def test_sensitivity_of_zero_attributions_is_divided_by_one(affine):
    def constant(rows, target):
        return np.zeros_like(rows) if len(rows) == N else np.ones_like(rows)

    values = sensitivity_max(constant, X, TARGET, n_perturb_samples=3, seed=0)
    np.testing.assert_allclose(values, np.sqrt(D))


def test_sensitivity_keeps_the_targets_a_target_fn_chose(affine):
    """With a target_fn, X's predicted classes are explained in every perturbed copy."""
    explainer = IntegratedGradients(affine, target_fn=lambda p: np.argmax(p, axis=1))
    by_target_fn = sensitivity_max(explainer, X, perturb_radius=0.5, seed=8)
    chosen = np.argmax(f(X, slice(None)), axis=1)
    given = sensitivity_max(IntegratedGradients(affine), X, chosen, perturb_radius=0.5, seed=8)
    np.testing.assert_allclose(by_target_fn, given, rtol=1e-6)


# --- MuFidelity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("baseline", [0.0, 0.5])
def test_mu_fidelity_of_exact_attributions_is_one(affine, baseline):
    exact = ig_from(baseline)
    values = mu_fidelity(affine, X, exact, TARGET, baseline, subset_percent=0.5, seed=0)
    np.testing.assert_allclose(values, 1.0, atol=1e-9)
    reversed_sign = mu_fidelity(affine, X, -exact, TARGET, baseline, subset_percent=0.5, seed=0)
    np.testing.assert_allclose(reversed_sign, -1.0, atol=1e-9)


def test_mu_fidelity_on_an_image_grid():
    """On a grid of super-pixels: exact attributions of an affine model still correlate 1."""
    rng = np.random.default_rng(45)
    shape = (6, 6, 2)
    weights = rng.normal(size=(72, 1)).astype("float32")
    model = dense_model(weights, np.array([0.2], "float32"), shape)
    images = rng.normal(size=(3, *shape)).astype("float32")
    exact = weights[:, 0].reshape(shape) * images
    values = mu_fidelity(model, images, exact, grid_size=3, subset_percent=0.3, seed=1)
    np.testing.assert_allclose(values, 1.0, atol=1e-9)
    # Noise on the attributions lowers it.
    noisy = exact + rng.normal(scale=3 * np.abs(exact).mean(), size=exact.shape)
    assert (mu_fidelity(model, images, noisy, grid_size=3, seed=1) < 0.99).all()


@pytest.mark.parametrize("batch_size", [1, 50, 10_000])
def test_seeded_mu_fidelity_does_not_depend_on_the_batch_size(affine, batch_size):
    noisy = ig_from(0.0) + seeded_floats((N, D), seed=46)
    reference = mu_fidelity(affine, X, noisy, TARGET, subset_percent=0.5, n_samples=16, seed=2)
    batched = mu_fidelity(
        affine, X, noisy, TARGET, subset_percent=0.5, n_samples=16, seed=2, batch_size=batch_size
    )
    np.testing.assert_allclose(batched, reference)
    assert (np.abs(reference) < 1).any()  # not all trivially perfect
