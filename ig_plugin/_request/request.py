"""One ``explain`` call's arguments, as given and as checked.

:class:`ExplainArguments` holds what the caller passed to ``explain`` (every explainer takes the
same ones, and ``validate`` checks them without explaining); :func:`prepare_request` checks the
arguments every explainer shares, in numpy, so that bad input fails fast with a message naming
the argument and the model untouched. What only one explainer takes (IG's baselines, Expected
Gradients' background) that explainer checks on the :class:`Request`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from ig_plugin._model.keras import vocabulary_of
from ig_plugin._model.signature import signature_of
from ig_plugin._request.checks import check_bool
from ig_plugin._request.forward_kwargs import ForwardKwargs, split_forward_kwargs
from ig_plugin._request.heads import HeadTargets, Picks, check_targets_and_output
from ig_plugin._request.inputs import Inputs, Layout, normalise_inputs
from ig_plugin._request.outputs import check_transform
from ig_plugin._request.targets import normalise_target


@dataclass(frozen=True)
class ExplainArguments:
    """The arguments of one ``explain`` call, as the caller gave them (see
    :meth:`ig_plugin.IntegratedGradients.explain` for each). An explainer that does not take one
    (Expected Gradients has no ``baselines``) leaves it at its default."""

    X: Any
    forward_kwargs: Any = None
    baselines: Any = None
    target: Any = None
    attribute_to_layer_inputs: Any = False
    targets: Any = None
    output: Any = None
    progress_bar: Any = False
    # Not an argument of any explain: set by ig_plugin.text, which explains log-probabilities.
    output_transform: Any = None


class ModelCall(NamedTuple):
    """How one explain calls the model: the same in every pass, and static in every trace.

    A NamedTuple of plain values: compiled functions that take it trace once per distinct call,
    not once per ``explain``.

    Attributes
    ----------
    layout
        How the input tensors are packed for the model (one, a list, or a dict by name).
    pick
        Which output tensor to explain, for models with several; a tuple for targets on
        several outputs (:mod:`ig_plugin._request.heads`).
    to_inputs
        With a layer: its inputs, not its outputs, are recorded or replaced.
    transform
        Applied to the picked output before a target takes its scalar (and to the predictions):
        None, or ``"log_softmax"`` over the last axis.
    """

    layout: Layout
    pick: Picks = None
    to_inputs: bool = False
    transform: str | None = None


class Request(NamedTuple):
    """The checked arguments every explainer shares.

    Attributes
    ----------
    inputs, kwargs
        X, and the forward_kwargs split by how they travel along the path.
    target
        ``target`` as an int64 array with leading dimension N, or None.
    targets
        ``targets`` as an int64 array (see
        :func:`~ig_plugin._request.targets.normalise_targets`), ``"all"``, targets on several
        outputs (:class:`~ig_plugin._request.heads.HeadTargets`), or None.
    call
        How the model is called (inputs' layout, output pick, layer side).
    show_progress
        Whether to draw a progress bar.
    """

    inputs: Inputs
    kwargs: ForwardKwargs
    target: np.ndarray | None
    targets: np.ndarray | str | HeadTargets | None
    call: ModelCall
    show_progress: bool


class ExplainsAModel(Protocol):
    """What :func:`prepare_request` reads of an explainer."""

    model: Any
    layer: Any
    target_fn: Any

    def _check_has_model(self) -> None: ...


def prepare_request(explainer: ExplainsAModel, arguments: ExplainArguments) -> Request:
    """Check the arguments every explainer shares against the explainer and its model.

    Raises
    ------
    TypeError, ValueError
        An argument is invalid; the message names it and says what was received.
    """
    explainer._check_has_model()
    target, targets, target_fn = arguments.target, arguments.targets, explainer.target_fn
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
    to_inputs = check_bool("attribute_to_layer_inputs", arguments.attribute_to_layer_inputs)
    show_progress = check_bool("progress_bar", arguments.progress_bar)
    transform = check_transform(arguments.output_transform)
    has_layer = explainer.layer is not None
    vocabulary = vocabulary_of(explainer.model, explainer.layer) if has_layer else None
    inputs = normalise_inputs(arguments.X, signature_of(explainer.model), has_layer, vocabulary)
    n_rows = inputs.n_rows
    checked_targets, pick = check_targets_and_output(targets, arguments.output, n_rows)
    return Request(
        inputs=inputs,
        kwargs=split_forward_kwargs(arguments.forward_kwargs, n_rows),
        target=normalise_target(target, n_rows),
        targets=checked_targets,
        call=ModelCall(inputs.layout, pick, to_inputs and has_layer, transform),
        show_progress=show_progress,
    )


def check_one_float_input(request: Request, method: str) -> None:
    """Refuse models with several inputs and X that is not floating point.

    Raises
    ------
    ValueError
        The model takes several inputs.
    TypeError
        X is not floating point.
    """
    arrays = request.inputs.arrays
    if len(arrays) != 1:
        raise ValueError(
            f"{method} explains models with one input. Received: X with {len(arrays)} inputs."
        )
    if arrays[0].dtype.kind != "f":
        raise TypeError(f"{method} needs X of floats. Received: X of dtype {arrays[0].dtype}.")
