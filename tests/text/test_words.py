"""``ig_plugin.text.aggregate_words``: subword attributions combined into words by word ids."""

import numpy as np
import pytest
from sequence_models import tagger, token_ids

from ig_plugin import IntegratedGradients
from ig_plugin.text import aggregate_words

# "[CLS] un ##believ ##able film [SEP] [PAD]": three subwords of word 0, one of word 1.
WORD_IDS = [None, 0, 0, 0, 1, None, None]
SCORES = np.array([0.7, 0.5, -0.2, 0.1, -0.4, 0.3, 0.0])


def test_sum_mean_and_absmax():
    np.testing.assert_allclose(aggregate_words(SCORES, WORD_IDS), [0.4, -0.4])
    np.testing.assert_allclose(aggregate_words(SCORES, WORD_IDS, how="mean"), [0.4 / 3, -0.4])
    np.testing.assert_allclose(aggregate_words(-SCORES, WORD_IDS, how="absmax"), [-0.5, 0.4])


def test_trailing_axes_are_kept():
    """An embedding's attributions (T, D) become (W, D)."""
    values = np.arange(14.0).reshape(7, 2)
    np.testing.assert_allclose(aggregate_words(values, WORD_IDS), [[2 + 4 + 6, 3 + 5 + 7], [8, 9]])


def test_a_batch_gives_one_array_per_sample():
    second = [None, 0, 1, 1, 2, 2, None]
    words = aggregate_words(np.stack([SCORES, SCORES]), [WORD_IDS, second])
    assert isinstance(words, list) and [len(w) for w in words] == [2, 3]
    np.testing.assert_allclose(words[1], [0.5, -0.1, -0.1])


def test_a_word_without_tokens_is_nan():
    words = aggregate_words([1.0, 2.0], [0, 2])
    np.testing.assert_allclose(words, [1.0, np.nan, 2.0])


def test_words_keep_completeness():
    """The sum over words is the sum over the sequence's non-special tokens: with the special
    positions given word id None, the words of an explanation add up to its output change."""
    model = tagger(vocabulary=20, length=8, dim=6, n_tags=4, seed=150)
    ids = token_ids((3, 8), 20, seed=151)
    explanation = IntegratedGradients(model, layer=model.embedding, n_steps=64).explain(
        ids, target=np.tile([2, 1], (3, 1))
    )
    scores = explanation.attributions[0].sum(axis=-1)  # (N, T)
    word_ids = [[0, 0, 1, 2, 2, 2, 3, 4]] * 3
    words = aggregate_words(scores, word_ids)
    np.testing.assert_allclose([w.sum() for w in words], scores.sum(axis=1), rtol=1e-6)


ERRORS = {
    "how": ({"how": "max"}, ValueError, "`how`"),
    "length": ({"word_ids": [0, 1]}, ValueError, r"one entry per token: 7\. Received: 2"),
    "negative": ({"word_ids": [None, -1, 0, 0, 1, None, None]}, ValueError, "non-negative"),
    "floats": ({"word_ids": [None, 0.0, 0, 0, 1, None, None]}, ValueError, "non-negative ints"),
    "a string": ({"word_ids": "0001"}, TypeError, "`word_ids` must be a sequence"),
    "text": ({"attributions": ["a"] * 7}, TypeError, "`attributions` must be an array"),
    "batch size": (
        {"attributions": np.zeros((3, 7)), "word_ids": [WORD_IDS] * 2},
        ValueError,
        r"for 2 sequences.*\(2, T, \.\.\.\)",
    ),
}


@pytest.mark.parametrize("changes, error, match", ERRORS.values(), ids=ERRORS.keys())
def test_bad_arguments(changes, error, match):
    arguments = {"attributions": SCORES, "word_ids": WORD_IDS, **changes}
    with pytest.raises(error, match=match):
        aggregate_words(**arguments)
