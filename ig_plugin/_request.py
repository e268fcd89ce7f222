"""One ``explain`` call's arguments, checked and normalised before any TensorFlow work.

Everything the caller passes is checked here, in numpy, so that bad input fails fast with a
message naming the argument, the model untouched; :meth:`IntegratedGradients.validate` runs
exactly these checks without explaining.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ig_plugin import _params
from ig_plugin._baselines import normalise_baselines
from ig_plugin._compiled import ModelCall
from ig_plugin._forward_kwargs import ForwardKwargs, split_forward_kwargs
from ig_plugin._inputs import Inputs, normalise_inputs
from ig_plugin._keras import declared_inputs, vocabulary_of
from ig_plugin._outputs import check_pick
from ig_plugin._targets import normalise_target, normalise_targets


class Request(NamedTuple):
    """The normalised arguments of one ``explain`` call.

    Attributes
    ----------
    inputs, baselines, kwargs
        X, one baseline array per input, and the forward_kwargs split by how they travel.
    target
        ``target`` as an int64 array with leading dimension N, or None.
    targets
        ``targets`` as an int64 ``(N, K)`` array, ``"all"``, or None: several targets per sample.
    call
        How the model is called (inputs' layout, output pick, layer side).
    show_progress
        Whether to draw a progress bar.
    """

    inputs: Inputs
    baselines: tuple[np.ndarray, ...]
    kwargs: ForwardKwargs
    target: np.ndarray | None
    targets: np.ndarray | str | None
    call: ModelCall
    show_progress: bool


def prepare_request(
    explainer: Any,
    X: Any,
    *,
    forward_kwargs: Any = None,
    baselines: Any = None,
    target: Any = None,
    targets: Any = None,
    attribute_to_layer_inputs: Any = False,
    output: Any = None,
    progress_bar: Any = False,
    with_baselines: bool = True,
) -> Request:
    """Check ``explain``'s arguments against the explainer and its model.

    The arguments after X are ``explain``'s, by name; a variant passes those it has.
    ``with_baselines=False`` (a variant whose paths start elsewhere) leaves ``baselines`` empty
    instead of building X-sized zeros.

    Raises
    ------
    TypeError, ValueError
        An argument is invalid; the message names it and says what was received.
    """
    explainer._check_has_model()
    target_fn = explainer.meta["params"]["target_fn"]
    given = [
        name
        for name, value in (("target", target), ("targets", targets), ("target_fn", target_fn))
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(
            f"Pass at most one of `target`, `targets` and the explainer's `target_fn`. "
            f"Received: {', '.join(given)} (target={target!r}, targets={targets!r}, "
            f"target_fn={target_fn})."
        )
    to_inputs = _params.check_bool("attribute_to_layer_inputs", attribute_to_layer_inputs)
    show_progress = _params.check_bool("progress_bar", progress_bar)
    pick = check_pick(output)
    has_layer = explainer.layer is not None
    vocabulary = vocabulary_of(explainer.model, explainer.layer) if has_layer else None
    inputs = normalise_inputs(X, declared_inputs(explainer.model), has_layer, vocabulary)
    n_samples = inputs.n_samples
    return Request(
        inputs=inputs,
        baselines=normalise_baselines(inputs, baselines) if with_baselines else (),
        kwargs=split_forward_kwargs(forward_kwargs, n_samples),
        target=normalise_target(target, n_samples),
        targets=None if targets is None else normalise_targets(targets, n_samples),
        call=ModelCall(inputs.layout, pick, to_inputs and has_layer),
        show_progress=show_progress,
    )
