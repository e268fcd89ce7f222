"""Attributions of a causal language model's generated tokens, every position in one pass.

A generated token ``token_ids[t]`` (``t >= prompt_length``) is explained by its log-probability
given the tokens before it, ``log p(token_ids[t] | token_ids[:t])``: the log-softmax of the
logits at position ``t - 1``, at ``token_ids[t]``. Teacher forcing gives every such scalar from
one forward pass of the whole sequence, so all of them are K = T - prompt_length targets of one
Integrated Gradients path (``targets=`` on the ``(N, T, V)`` output, as log-probabilities): from
the baseline sequence to the real one, in the token embedding's space. Row ``t`` of the result
is the same as one separate ``explain`` of that token's log-probability on the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ig_plugin._request import checks
from ig_plugin._request.request import ExplainArguments
from ig_plugin.integrated_gradients import IntegratedGradients
from ig_plugin.text._result import GenerationAttributions, generation_result

#: The keys under which a dict of model inputs holds the token ids: KerasHub's and Hugging
#: Face's names.
IDS_KEYS = ("token_ids", "input_ids")


def _split_ids(token_ids: Any) -> tuple[np.ndarray, str | None]:
    """The ids ``(N, T)`` and, for a dict of model inputs, the key that holds them."""
    key = None
    ids = token_ids
    if isinstance(token_ids, Mapping):
        keys = [k for k in IDS_KEYS if k in token_ids]
        if len(keys) != 1:
            raise ValueError(
                "`token_ids` as a dict of model inputs must hold the ids under one of the keys "
                f"{list(IDS_KEYS)}. Received: keys {list(token_ids)}."
            )
        key = keys[0]
        ids = token_ids[key]
    elif not isinstance(token_ids, (np.ndarray, list, tuple)) and not hasattr(ids, "numpy"):
        raise TypeError(
            "`token_ids` must be an integer array (N, T), or a dict of model inputs holding one "
            f"(e.g. KerasHub's {{'token_ids': ..., 'padding_mask': ...}}). Received: "
            f"{type(token_ids).__name__}."
        )
    array = np.asarray(ids)
    if array.dtype.kind not in "iu" or array.ndim != 2:
        raise ValueError(
            "`token_ids` must hold integer ids of shape (N, T). Received: dtype "
            f"{array.dtype}, shape {array.shape}."
        )
    return array, key


def _generated_targets(ids: np.ndarray, prompt_length: int) -> np.ndarray:
    """``(N, G, 2)``: for each generated position t, the logits' position ``t - 1`` and the
    token ``ids[:, t]``."""
    positions = np.arange(prompt_length, ids.shape[1])
    before = np.broadcast_to(positions - 1, (len(ids), len(positions)))
    return np.stack([before, ids[:, positions]], axis=-1).astype(np.int64)


class GenerationExplainer:
    """Attributions of a causal language model's generated tokens, for batch after batch.

    :func:`attribute_generation` in an object: the model's passes are compiled on the first
    :meth:`explain` and reused by the next ones (a call of :func:`attribute_generation` compiles
    them anew, which can take longer than the attributions themselves). Threads may share one.

    Parameters
    ----------
    model
        A causal language model whose output is next-token logits ``(N, T, V)``: position
        ``t`` scores the token at ``t + 1``.
    layer
        The token embedding (a layer of the model, or a callable ``model -> layer``). A tied
        embedding that the model calls again as its output projection (GPT-2) is attributed at
        its first call, the lookup.
    n_steps
        Points on the path (or ``"auto"``, see :class:`~ig_plugin.IntegratedGradients`).
    method
        The quadrature rule (see :class:`~ig_plugin.IntegratedGradients`).
    internal_batch_size
        Most (path point, generated position) pairs per gradient batch, or ``"auto"``: as many
        as ``memory_budget`` holds (see :class:`~ig_plugin.IntegratedGradients`).
    memory_budget
        With ``internal_batch_size="auto"`` only: bytes the gradient batches may use (default: a
        quarter of the memory available).
    """

    def __init__(
        self,
        model: Callable[..., Any],
        layer: Any,
        n_steps: int | str = 50,
        *,
        method: str = "gausslegendre",
        internal_batch_size: int | str = 100,
        memory_budget: int | None = None,
    ) -> None:
        if layer is None:
            raise ValueError(
                "`layer` must be the token embedding (token ids cannot be interpolated). "
                "Received: None."
            )
        self.explainer = IntegratedGradients(
            model,
            layer=layer,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
            memory_budget=memory_budget,
        )

    def explain(
        self,
        token_ids: Any,
        prompt_length: int,
        forward_kwargs: dict | None = None,
        baseline_id: int | None = None,
        *,
        output: int | str | None = None,
    ) -> GenerationAttributions:
        """Attribute every generated token to the tokens before it.

        Parameters
        ----------
        token_ids
            ``(N, T)`` integer ids, prompt and generated tokens; or a dict of model inputs
            holding them under ``"token_ids"`` (KerasHub) or ``"input_ids"`` (Hugging Face),
            beside the other inputs such as a padding mask, which every pass gets unchanged.
        prompt_length
            How many positions the prompt takes: rows are explained from there to ``T - 1``.
        forward_kwargs
            Keyword arguments of every model call (an ``attention_mask``); arrays with leading
            dimension N follow their sample.
        baseline_id
            The baseline sequence is this id at every position (None: id 0), with the sample's
            other inputs and masks.
        output
            For a model that returns several outputs (a Hugging Face model's ``logits`` beside
            its cache), which one holds the logits.

        Returns
        -------
        GenerationAttributions
            The ``(N, T - prompt_length, T)`` matrix, its deltas, the log-probabilities and the
            explanation behind them.

        Raises
        ------
        TypeError, ValueError
            An argument is invalid (before the model runs), or the model's output is not
            ``(N, T, V)`` logits for these ids.
        """
        ids, key = _split_ids(token_ids)
        length = ids.shape[1]
        prompt_length = checks.check_scalar(
            "prompt_length",
            prompt_length,
            least=1,
            below=length,
            why=" (position 0 has nothing before it to be predicted from, and at least one of "
            f"the {length} positions must be generated)",
        )
        baseline = checks.check_scalar(
            "baseline_id", 0 if baseline_id is None else baseline_id, least=0
        )
        starts = np.full_like(ids, baseline)
        baselines: Any = starts
        if key is not None:  # the sample's own masks and other inputs, the ids replaced
            baselines = {**token_ids, key: starts}
        targets = _generated_targets(ids, prompt_length)
        arguments = ExplainArguments(
            X=token_ids,
            forward_kwargs=forward_kwargs,
            baselines=baselines,
            targets=targets,
            output=output,
            output_transform="log_softmax",
        )
        explanation = self.explainer._explain(arguments)
        return generation_result(explanation, ids, targets, prompt_length)


def attribute_generation(
    model: Callable[..., Any],
    layer: Any,
    token_ids: Any,
    prompt_length: int,
    forward_kwargs: dict | None = None,
    n_steps: int | str = 50,
    baseline_id: int | None = None,
    *,
    output: int | str | None = None,
    internal_batch_size: int | str = 100,
    memory_budget: int | None = None,
) -> GenerationAttributions:
    """Attribute every generated token of a causal language model to the tokens before it.

    For each position ``t >= prompt_length``, the Integrated Gradients attribution of
    ``log p(token_ids[t] | token_ids[:t])`` to the embedding of every position, from one
    teacher-forced pass per path point for all positions (see the module docstring). Each call
    compiles the model's passes anew: for batch after batch, make a :class:`GenerationExplainer`
    once and call its ``explain``.

    Parameters
    ----------
    model, layer, n_steps, internal_batch_size, memory_budget
        As for :class:`GenerationExplainer`.
    token_ids, prompt_length, forward_kwargs, baseline_id, output
        As for :meth:`GenerationExplainer.explain`.

    Returns
    -------
    GenerationAttributions
        The ``(N, T - prompt_length, T)`` matrix, its deltas, the log-probabilities and the
        explanation behind them.

    Raises
    ------
    TypeError, ValueError
        An argument is invalid (before the model runs), or the model's output is not
        ``(N, T, V)`` logits for these ids.
    """
    explainer = GenerationExplainer(
        model,
        layer,
        n_steps=n_steps,
        internal_batch_size=internal_batch_size,
        memory_budget=memory_budget,
    )
    return explainer.explain(token_ids, prompt_length, forward_kwargs, baseline_id, output=output)
