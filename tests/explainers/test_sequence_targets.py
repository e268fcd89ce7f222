"""``targets=`` on outputs of rank > 2: K (position, class) tuples per sample in one pass, equal to
K separate ``explain(X, target=...)`` calls, with every explainer and setting that takes targets."""

import numpy as np
import pytest
from models import rank3_mlp, seeded_floats
from sequence_models import padding_mask, tagger, token_ids

from ig_plugin import ExpectedGradients, IntegratedGradients, NoiseTunnel

X = seeded_floats((6, 4), seed=120)
SHARED = [(0, 1), (2, 4), (1, 0), (2, 4)]  # a repeated tuple is explained twice


@pytest.fixture(scope="module")
def grid():
    """Output (N, 3, 5): three positions, five classes."""
    return rank3_mlp(4, (3, 5), seed=121)


def per_sample(targets, n):
    """Shared tuples ``(K, r - 1)`` as every sample's ``(N, K, r - 1)``."""
    return np.repeat(np.asarray(targets)[np.newaxis], n, axis=0)


def assert_equal_to_separate_calls(explainer, X, targets, n_rows, **kwargs):
    """Each of the K tuples explained alone (``target`` of shape (N, r - 1)) gives the same
    attributions and deltas as its column of the one pass."""
    together = explainer.explain(X, targets=targets, **kwargs)
    expected = per_sample(targets, n_rows) if np.ndim(targets) == 2 else np.asarray(targets)
    k = expected.shape[1]
    np.testing.assert_array_equal(together.target, expected)
    assert together.deltas.shape == (n_rows, k)
    for column in range(k):
        alone = explainer.explain(X, target=expected[:, column], **kwargs)
        for ours, theirs in zip(together.attributions, alone.attributions, strict=True):
            assert ours.shape == (n_rows, k, *theirs.shape[1:])
            assert ours.dtype == theirs.dtype
            np.testing.assert_allclose(ours[:, column], theirs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(together.deltas[:, column], alone.deltas, atol=1e-5)
    return together


def test_shared_tuples_equal_separate_calls(grid):
    explainer = IntegratedGradients(grid, n_steps=12, internal_batch_size=7)
    together = assert_equal_to_separate_calls(explainer, X, SHARED, len(X))
    # The target is a copy for every sample, not a read-only view of the list.
    assert together.target.flags.writeable


def test_each_sample_its_own_tuples(grid):
    rng = np.random.default_rng(122)
    targets = np.stack([rng.integers(0, 3, (6, 3)), rng.integers(0, 5, (6, 3))], axis=-1)
    explainer = IntegratedGradients(grid, method="riemann_trapezoid", n_steps=9)
    assert_equal_to_separate_calls(explainer, X, targets, len(X))


def test_completeness_per_target(grid):
    explanation = IntegratedGradients(grid, n_steps=64).explain(X, targets=SHARED)
    outputs, starts = np.asarray(grid(X)), np.asarray(grid(np.zeros_like(X)))
    for k, (position, label) in enumerate(SHARED):
        change = outputs[:, position, label] - starts[:, position, label]
        total = explanation.attributions[0][:, k].sum(axis=1)
        np.testing.assert_allclose(total, change, atol=1e-4)
        np.testing.assert_allclose(total - change, explanation.deltas[:, k], atol=1e-6)


# --- token classification: every position in one pass, through the embedding --------------------

LENGTH = 8


@pytest.fixture(scope="module")
def tokens():
    return tagger(vocabulary=20, length=LENGTH, dim=6, n_tags=4, seed=123)


IDS = token_ids((5, LENGTH), 20, seed=124)
MASK = padding_mask([8, 6, 8, 3, 5], LENGTH)


def test_every_position_through_the_embedding_with_a_mask(tokens):
    """The tag of each position, all in one pass, with the mask as a per-sample forward kwarg."""
    explainer = IntegratedGradients(tokens, layer=tokens.embedding, n_steps=10)
    every_position = [(t, 2) for t in range(LENGTH)]
    together = assert_equal_to_separate_calls(
        explainer, IDS, every_position, len(IDS), forward_kwargs={"attention_mask": MASK}
    )
    assert together.attributions[0].shape == (5, LENGTH, LENGTH, 6)
    # Masked positions are left out of the mean, so nothing is attributed to them, but by the
    # tag of their own position: [i, k, j] is position j's share in the tag of position k.
    other = ~np.eye(LENGTH, dtype=bool)[np.newaxis]
    masked = (MASK == 0)[:, np.newaxis, :] & other
    assert masked.any()
    np.testing.assert_array_equal(together.attributions[0][masked], 0.0)


def test_per_sample_positions_and_the_predicted_tags(tokens):
    """Each sample's predicted tag at each of its first three positions."""
    predicted = np.asarray(tokens(IDS)).argmax(axis=-1)  # (N, T)
    targets = np.stack([np.tile(np.arange(3), (5, 1)), predicted[:, :3]], axis=-1)
    explainer = IntegratedGradients(tokens, layer=tokens.embedding, n_steps=8)
    assert_equal_to_separate_calls(explainer, IDS, targets, len(IDS))


def test_auto_steps_meet_the_tolerance_for_every_tuple(tokens):
    explainer = IntegratedGradients(tokens, layer=tokens.embedding, n_steps="auto", tolerance=1e-4)
    explanation = explainer.explain(IDS, targets=[(0, 1), (5, 3)])
    assert explanation.error_estimates.shape == (5, 2)
    changes = explanation.attributions[0].sum(axis=(2, 3)) - explanation.deltas
    assert (np.abs(explanation.deltas) <= 1e-4 * np.abs(changes) + 1e-6).all()
    exact = IntegratedGradients(tokens, layer=tokens.embedding, n_steps=256).explain(
        IDS, targets=[(0, 1), (5, 3)]
    )
    np.testing.assert_allclose(explanation.attributions[0], exact.attributions[0], atol=1e-4)


def test_expected_gradients(grid):
    background = seeded_floats((5, 4), seed=125)
    explainer = ExpectedGradients(grid, background, n_samples=16, seed=126)
    together = assert_equal_to_separate_calls(explainer, X, SHARED[:2], len(X))
    assert together.data["expected_value"].shape == (len(X), 2)


def test_noise_tunnel(grid):
    smooth = NoiseTunnel(IntegratedGradients(grid, n_steps=8), nt_samples=3, stdevs=0.1, seed=127)
    assert_equal_to_separate_calls(smooth, X, SHARED[:2], len(X))


# --- errors --------------------------------------------------------------------------------------

ERRORS = {
    "class indices": ([0, 1], r"K index tuples of length 2.*Received: shape \(2,\)"),
    "tuples too short": ([(0,), (1,)], r"K index tuples of length 2.*Received: shape \(2, 1\)"),
    "tuples too long": ([(0, 1, 2)], r"K index tuples of length 2.*Received: shape \(1, 3\)"),
    "position out of range": ([(3, 0)], r"out of range for the model output shape \(3, 5\)"),
    "class out of range": ([(0, 5)], r"out of range for the model output shape \(3, 5\)"),
    "tuples of three": (np.zeros((6, 3), int), r"length 2.*Received: shape \(6, 3\)"),
    "4-D": (np.zeros((6, 1, 2, 1), int), r"K >= 1 targets.*Received: shape \(6, 1, 2, 1\)"),
    "wrong N": (np.zeros((5, 2, 2), int), r"\(6, K, rank - 1\).*Received: shape \(5, 2, 2\)"),
}


@pytest.mark.parametrize("targets, match", ERRORS.values(), ids=ERRORS.keys())
def test_targets_that_do_not_fit(grid, targets, match):
    with pytest.raises(ValueError, match=match):
        IntegratedGradients(grid, n_steps=2).explain(X, targets=targets)


def test_shapes_that_need_no_model_are_refused_before_it_runs(counting):
    X3 = seeded_floats((4, 3), seed=128)
    for bad in (np.zeros((3, 2, 2), int), np.zeros((4, 1, 1, 1), int), [[(0, 1)], [(1, 0)]]):
        with pytest.raises(ValueError, match="`targets`"):
            IntegratedGradients(counting).explain(X3, targets=bad)
    assert counting.calls == 0
