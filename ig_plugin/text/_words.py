"""Subword tokens to words: attributions summed (or averaged) over the tokens of each word."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ig_plugin._request.checks import check_choice, is_int

#: How the tokens of a word combine.
HOW = ("sum", "mean", "absmax")


def _check_word_ids(word_ids: Any, n_tokens: int, name: str) -> np.ndarray:
    """One sample's word ids as int64, -1 for None (a special token)."""
    if isinstance(word_ids, (str, bytes)) or not isinstance(word_ids, (Sequence, np.ndarray)):
        raise TypeError(
            f"`{name}` must be a sequence of ints or None, one per token. Received: "
            f"{type(word_ids).__name__}."
        )
    if len(word_ids) != n_tokens:
        raise ValueError(
            f"`{name}` must have one entry per token: {n_tokens}. Received: {len(word_ids)}."
        )
    bad = [w for w in word_ids if w is not None and not (is_int(w) and w >= 0)]
    if bad:
        raise ValueError(
            f"`{name}` must hold non-negative ints (word indices) or None (special tokens). "
            f"Received: {bad[0]!r}."
        )
    return np.array([-1 if w is None else int(w) for w in word_ids], dtype=np.int64)


def _combine(values: np.ndarray, words: np.ndarray, how: str) -> np.ndarray:
    """``values`` ``(T, ...)`` by the word of each token: ``(W, ...)``, W the largest id + 1."""
    n_words = int(words.max(initial=-1)) + 1
    result = np.full((n_words, *values.shape[1:]), np.nan, dtype=np.float64)
    for word in range(n_words):
        tokens = values[words == word].astype(np.float64)
        if len(tokens) == 0:
            continue  # a word without tokens (cut off by truncation): NaN
        if how == "sum":
            result[word] = tokens.sum(axis=0)
        elif how == "mean":
            result[word] = tokens.mean(axis=0)
        else:
            largest = np.abs(tokens).argmax(axis=0)
            result[word] = np.take_along_axis(tokens, largest[np.newaxis], axis=0)[0]
    return result


def aggregate_words(attributions: Any, word_ids: Any, how: str = "sum") -> Any:
    """Combine the attributions of subword tokens into one per word.

    Parameters
    ----------
    attributions
        Token attributions of one sample, ``(T, ...)``, or of N samples, ``(N, T, ...)`` (e.g.
        an embedding layer's attributions summed over the embedding axis,
        ``explanation.attributions[0].sum(axis=-1)``). Axes after the token axis are kept.
    word_ids
        The word of each token, as tokenizers give it: for one sample a sequence of T ints or
        None (Hugging Face's ``encoding.word_ids()``; None for special tokens such as
        ``[CLS]`` and padding, which are left out); for N samples a sequence of N such
        sequences.
    how
        ``"sum"`` (the default: the words' attributions still add up to the tokens', special
        tokens excepted), ``"mean"``, or ``"absmax"`` (the token attribution of largest
        magnitude, sign kept).

    Returns
    -------
    numpy.ndarray or list of numpy.ndarray
        Per sample ``(W, ...)`` float64, entry ``w`` for word id ``w``, W the largest word id
        plus one (a word with no token, cut off by truncation, is NaN); a list of N such arrays
        for N samples, whose numbers of words differ.

    Raises
    ------
    TypeError, ValueError
        The arguments' types or lengths do not match, or a word id is not a non-negative int.

    Examples
    --------
    >>> from ig_plugin.text import aggregate_words
    >>> aggregate_words([0.5, 0.2, 0.3, -0.4, 0.1], [None, 0, 0, 1, None])
    array([ 0.5, -0.4])
    """
    how = check_choice("how", how, HOW)
    try:
        values = np.asarray(attributions, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`attributions` must be an array of numbers. Received: {type(attributions).__name__}."
        ) from error
    batch = (
        isinstance(word_ids, (Sequence, np.ndarray))
        and len(word_ids) > 0
        and not isinstance(word_ids, (str, bytes))
        and all(isinstance(w, (Sequence, np.ndarray)) for w in word_ids)
    )
    if not batch:
        if values.ndim < 1:
            raise ValueError("`attributions` must have a token axis. Received: a scalar.")
        return _combine(values, _check_word_ids(word_ids, len(values), "word_ids"), how)
    if values.ndim < 2 or len(values) != len(word_ids):
        raise ValueError(
            f"`attributions` for {len(word_ids)} sequences of word ids must have shape "
            f"({len(word_ids)}, T, ...). Received: shape {values.shape}."
        )
    return [
        _combine(row, _check_word_ids(ids, values.shape[1], f"word_ids[{i}]"), how)
        for i, (row, ids) in enumerate(zip(values, word_ids, strict=True))
    ]
