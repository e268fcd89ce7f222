"""The model randomization test (Adebayo et al., 2018): do the attributions change when the
model's weights are randomized, layer by layer from the output down?"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from ig_plugin._explainer.base import ModelExplainer
from ig_plugin._model.keras import sublayers
from ig_plugin._request.checks import check_choice, check_seed, describe
from ig_plugin.metrics._correlation import spearman_rows
from ig_plugin.metrics._streams import entropy_of, random_stream
from ig_plugin.noise_tunnel import NoiseTunnel

ORDERS = ("cascading", "independent")

Unit = tuple[str, list[Any]]  # a layer's name (its path for a nested one) and its own weights


def model_randomization(
    explainer: Any,
    X: Any,
    target: Any = None,
    order: str = "cascading",
    seed: int | None = None,
) -> dict[str, np.ndarray]:
    """The model randomization test: Spearman's correlation of each sample's attributions on the
    model with those on the model with randomized weights (Adebayo et al., 2018).

    The layers with trainable weights are randomized one after the other from the output down
    (in the reverse order of the model's layers; a nested model's layers one by one): with
    ``order="cascading"`` each keeps the layers above it randomized, with ``"independent"`` only
    that layer is. A trainable weight tensor is replaced by seeded Gaussian draws with its own
    mean and standard deviation (the scale of a re-initialisation). After each layer, X is
    explained again for the targets of the first explanation (a ``target_fn`` chooses them
    once, on the model itself) and each sample's signed attributions are correlated with their
    first ones. An explanation method that depends on the model shows correlations that fall
    towards 0 as the randomization cascades; one that passes the test too easily (correlations
    that stay high) explains the input rather than the model.

    The user's model is left bitwise unchanged, also when an error is raised: the layers are
    randomized on a clone (``clone_model`` of the model's Keras, with its weights). A model
    Keras cannot clone (a subclassed model that its config cannot rebuild) is randomized in place
    and its weights are restored when done, with a warning: it must not be used from another
    thread meanwhile.

    Parameters
    ----------
    explainer
        An ig_plugin explainer of the model (``IntegratedGradients``, ``ExpectedGradients``,
        ``NoiseTunnel``, ...), with its settings. Give sampled methods a ``seed``, so that
        their draws do not lower the correlations by themselves.
    X
        The inputs, as its ``explain`` takes them.
    target
        As ``explain`` takes it.
    order
        ``"cascading"`` or ``"independent"``.
    seed
        None: fresh weights on every call; an int: the same random weights.

    Returns
    -------
    dict
        ``{layer name: (N,) float64 correlations}``, in randomization order (a nested layer is
        named by its path, ``"inner_model/dense"``). A sample whose attributions are all equal
        before or after gets 0.

    Raises
    ------
    TypeError, ValueError
        An argument is invalid (the explainer's own checks of X and target included), before
        any explaining; or the model has no layer with trainable weights.
    """
    if not isinstance(explainer, (ModelExplainer, NoiseTunnel)):
        raise TypeError(
            "`explainer` must be an ig_plugin explainer of a model (IntegratedGradients, "
            f"ExpectedGradients, NoiseTunnel, ...). Received: {describe(explainer)}."
        )
    chosen_order = check_choice("order", order, ORDERS)
    entropy = entropy_of(check_seed(seed))
    explainer.validate(X, target=target)
    model = explainer.model
    names = [name for name, _ in own_weights(model)]
    if not names:
        raise ValueError("`explainer`'s model has no layer with trainable weights to randomize.")

    first = explainer.explain(X, target=target)
    before, targets = _flat(first.attributions), first.data.get("target")
    correlations: dict[str, np.ndarray] = {}
    with _randomizable(explainer, X) as (randomized_explainer, randomized_model):
        units = own_weights(randomized_model)
        originals = [[w.numpy() for w in weights] for _, weights in units]
        for index, ((_, weights), name) in enumerate(zip(units, names, strict=True)):
            if chosen_order == "independent" and index > 0:
                _assign(units[index - 1][1], originals[index - 1])
            _randomize(weights, random_stream(entropy, index))
            after = randomized_explainer.explain(X, target=targets)
            correlations[name] = spearman_rows(before, _flat(after.attributions))
    return correlations


def own_weights(model: Any) -> list[Unit]:
    """The layers below ``model`` that hold trainable weights of their own (not only their
    sub-layers'), in randomization order: the reverse of the model's layers, a nested model's
    layers in place of it."""
    units = []
    for names, layer in _in_order(model, (), set()):
        held_below = {id(w) for child in sublayers(layer) for w in child.trainable_weights}
        own = [w for w in layer.trainable_weights if id(w) not in held_below]
        if own:
            units.append(("/".join(names), own))
    return units[::-1]


def _in_order(layer: Any, names: tuple[str, ...], seen: set[int]) -> Iterator[tuple[Any, Any]]:
    """Every layer below ``layer`` (once), each followed by its own, with its path of names."""
    for child in sublayers(layer):
        if id(child) not in seen:
            seen.add(id(child))
            path = (*names, child.name)
            yield path, child
            yield from _in_order(child, path, seen)


def _flat(attributions: list[np.ndarray]) -> np.ndarray:
    """Each sample's attributions (of every input or layer tensor) in one row, float64."""
    return np.concatenate(
        [np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in attributions], axis=1
    )


def _assign(weights: list[Any], values: list[np.ndarray]) -> None:
    for weight, value in zip(weights, values, strict=True):
        weight.assign(value)


def _randomize(weights: list[Any], stream: np.random.Generator) -> None:
    """Each tensor replaced by Gaussian draws with its own mean and standard deviation."""
    for weight in weights:
        value = np.asarray(weight.numpy())
        draws = stream.normal(value.mean(), value.std(), size=value.shape)
        weight.assign(draws.astype(value.dtype))


@contextlib.contextmanager
def _randomizable(
    explainer: ModelExplainer | NoiseTunnel, X: Any
) -> Iterator[tuple[ModelExplainer | NoiseTunnel, Any]]:
    """A copy of ``explainer`` without ``target_fn`` on a clone of its model; or, for a model
    that cannot be cloned, on the model itself, whose weights are restored on leaving."""
    model = explainer.model
    copy = explainer.with_target_fn(None)
    clone = _clone(model, X)
    if clone is not None:
        copy.reset_predictor(clone)
        yield copy, clone
        return
    warnings.warn(
        f"Keras cannot clone the model {getattr(model, 'name', '')!r}: its layers are "
        "randomized in place, and its weights restored when done. Do not use the model from "
        "another thread until model_randomization returns.",
        UserWarning,
        stacklevel=3,
    )
    saved = [np.array(w.numpy(), copy=True) for w in model.weights]
    try:
        yield copy, model
    finally:
        _assign(list(model.weights), saved)


def _keras_of(model: Any) -> Any | None:
    """The Keras module whose Model ``model`` is (Keras 3 or 2, or tf_keras), if imported."""
    for name in ("keras", "tf_keras"):
        module = sys.modules.get(name)
        model_class = getattr(getattr(module, "models", None), "Model", None)
        if isinstance(model_class, type) and isinstance(model, model_class):
            return module
    return None


def _clone(model: Any, X: Any) -> Any | None:
    """A clone of ``model`` with its weights, by its own Keras; None where that fails."""
    keras_module = _keras_of(model)
    if keras_module is None:
        return None
    try:
        clone = keras_module.models.clone_model(model)
        if len(clone.weights) != len(model.weights):  # a subclassed clone, built on first call
            clone(X)
        clone.set_weights(model.get_weights())
    except Exception:  # any model Keras cannot clone: randomized in place instead
        return None
    if _shapes(clone) != _shapes(model):
        return None
    return clone


def _shapes(model: Any) -> list[list[tuple[int, ...]]]:
    return [[tuple(w.shape) for w in weights] for _, weights in own_weights(model)]
