"""What :mod:`ig_plugin.text` gives for a generation: the matrix of every generated token's
attributions to the positions, with its picture."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from alibi.api.interfaces import Explanation
from matplotlib.figure import Figure

from ig_plugin._request import checks
from ig_plugin.text._plot import plot_generation


@dataclass(frozen=True)
class GenerationAttributions:
    """Every generated token's attributions to the tokens before it.

    With ``G = T - prompt_length`` generated positions, row ``g`` is the token at position
    ``t = prompt_length + g``.

    Attributes
    ----------
    matrix
        ``(N, G, T)``: the attribution of ``log p(token_ids[t] | token_ids[:t])`` to the
        embedding of each position, summed over the embedding axis. A causal model cannot see
        position ``t`` or later when it predicts ``token_ids[t]``, so those entries are zero
        (they are computed, not set: a model that looks ahead shows it there).
    deltas
        ``(N, G)``: each row's sum minus the change of its log-probability between the baseline
        sequence and the real one (the completeness gap; small when ``n_steps`` suffices).
    log_probs
        ``(N, G)``: ``log p(token_ids[t] | token_ids[:t])`` on the real sequence.
    token_ids
        ``(N, T)``: the sequences explained.
    prompt_length
        The positions before the first generated token.
    explanation
        The Integrated Gradients explanation behind the matrix: its ``attributions[0]`` are
        ``(N, G, T, *embedding_shape)``, its ``predictions`` the log-probabilities ``(N, T, V)``
        and its ``target`` the ``(position - 1, token)`` of each row.
    """

    matrix: np.ndarray
    deltas: np.ndarray
    log_probs: np.ndarray
    token_ids: np.ndarray
    prompt_length: int
    explanation: Explanation

    def plot(self, index: int = 0, vocabulary: Any = None) -> Figure:
        """A heatmap of sample ``index``'s matrix: one row per generated token, one column per
        position, green where a position raised the token's log-probability, red where it
        lowered it.

        Parameters
        ----------
        index
            Which sample to draw.
        vocabulary
            Labels the tokens: a sequence of strings indexed by id, a mapping between ids and
            strings (either way round), or a tokenizer (KerasHub's ``id_to_token``, Hugging
            Face's ``convert_ids_to_tokens``). Without one, tokens are labelled by their ids.

        Returns
        -------
        matplotlib.figure.Figure
            The heatmap, with a colour bar; not shown (save it with ``fig.savefig``).
        """
        sample = checks.check_scalar("index", index, least=0, below=len(self.matrix))
        return plot_generation(
            self.matrix[sample], self.token_ids[sample], self.prompt_length, vocabulary, sample
        )


def generation_result(
    explanation: Explanation, ids: np.ndarray, targets: np.ndarray, prompt_length: int
) -> GenerationAttributions:
    """The result of an explanation whose K targets are ``targets`` ``(N, G, 2)``: the
    (position - 1, token) of each generated position, the layer being the token embedding."""
    attributions = explanation.attributions[0]  # (N, G, T, *embedding)
    length = ids.shape[1]
    if attributions.ndim < 3 or attributions.shape[2] != length:
        layer_shape = attributions.shape[:1] + attributions.shape[2:]
        raise ValueError(
            f"`layer`'s outputs must have one entry per position, shape (N, {length}, ...), to "
            f"attribute to positions. Received: shape {layer_shape}."
        )
    matrix = attributions.reshape(*attributions.shape[:3], -1).sum(axis=-1, dtype=np.float64)
    rows = np.arange(len(ids))[:, np.newaxis]
    log_probs = explanation.predictions[rows, targets[..., 0], targets[..., 1]]
    return GenerationAttributions(
        matrix=matrix.astype(attributions.dtype),
        deltas=explanation.deltas,
        log_probs=log_probs,
        token_ids=ids,
        prompt_length=int(prompt_length),
        explanation=explanation,
    )
