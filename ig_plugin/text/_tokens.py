"""Token labels: ids as strings, through a vocabulary or a tokenizer of either library."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _from_mapping(vocabulary: Mapping, ids: list[int]) -> list[str]:
    """A mapping id -> token, or token -> id (Hugging Face's ``get_vocab()``)."""
    if vocabulary and all(isinstance(key, str) for key in vocabulary):
        vocabulary = {int(i): token for token, i in vocabulary.items()}
    missing = [i for i in ids if i not in vocabulary]
    if missing:
        raise ValueError(
            f"`vocabulary` has no token for id {missing[0]}: it must map every id of the "
            f"sequence. Received: a mapping of {len(vocabulary)} entries."
        )
    return [str(vocabulary[i]) for i in ids]


def token_labels(ids: np.ndarray, vocabulary: Any) -> list[str]:
    """One label per id: the token the vocabulary or tokenizer gives it, or the id itself.

    ``vocabulary`` is None, a sequence of strings indexed by id, a mapping between ids and
    strings (either way round), or a tokenizer: KerasHub's (``id_to_token``) or Hugging Face's
    (``convert_ids_to_tokens``).

    Raises
    ------
    TypeError
        ``vocabulary`` is none of those.
    ValueError
        It has no token for one of the ids.
    """
    plain = [int(i) for i in np.asarray(ids).ravel()]
    if vocabulary is None:
        return [str(i) for i in plain]
    if hasattr(vocabulary, "convert_ids_to_tokens"):
        return [str(token) for token in vocabulary.convert_ids_to_tokens(plain)]
    if hasattr(vocabulary, "id_to_token"):
        return [str(vocabulary.id_to_token(i)) for i in plain]
    if isinstance(vocabulary, Mapping):
        return _from_mapping(vocabulary, plain)
    if isinstance(vocabulary, (Sequence, np.ndarray)) and not isinstance(vocabulary, str):
        too_large = [i for i in plain if i >= len(vocabulary)]
        if too_large:
            raise ValueError(
                f"`vocabulary` has {len(vocabulary)} tokens, so no token for id {too_large[0]}."
            )
        return [str(vocabulary[i]) for i in plain]
    raise TypeError(
        "`vocabulary` must be None, a sequence of tokens indexed by id, a mapping between ids "
        "and tokens, or a tokenizer (with id_to_token or convert_ids_to_tokens). Received: "
        f"{type(vocabulary).__name__}."
    )
