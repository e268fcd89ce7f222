"""NoiseTunnel: SmoothGrad, SmoothGrad-squared and VarGrad over ig_plugin's explainers, as an alibi
``Explainer``."""

from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np
from alibi.api.interfaces import Explainer, Explanation

from ig_plugin import _saving
from ig_plugin._draws import fresh_entropy
from ig_plugin._inputs import ArrayOrList
from ig_plugin._keras import declared_inputs
from ig_plugin._request import prepare_request
from ig_plugin._saving import whitebox_local_meta
from ig_plugin._smoothing import RunningMoments, Smoother, noisy_copy
from ig_plugin._targets import choose_rule
from ig_plugin._variant_params import check_n_samples, check_nt_type, check_seed, check_stdevs
from ig_plugin.expected_gradients import ExpectedGradients
from ig_plugin.integrated_gradients import IntegratedGradients

#: Explainers NoiseTunnel can wrap.
WRAPPABLE = (IntegratedGradients, ExpectedGradients)

Wrapped = IntegratedGradients | ExpectedGradients


class NoiseTunnel(Explainer):
    """Smooth the attributions of an explainer over noisy copies of X (Smilkov et al., 2017;
    Adebayo et al., 2018), with captum's ``NoiseTunnel`` names and meanings.

    Each of ``n_samples`` copies of X gets Gaussian noise of standard deviation ``stdevs`` and is
    explained by the wrapped explainer; the copies' attributions are then combined:

    - ``"smoothgrad"``: their mean;
    - ``"smoothgrad_sq"``: the mean of their squares;
    - ``"vargrad"``: their variance, ``mean(a**2) - mean(a)**2`` (the population variance, as
      captum computes it, so its expectation is ``(n_samples - 1) / n_samples`` times the
      variance of one copy's attributions).

    One noisy copy is made and explained at a time, and folded into running sums: memory holds
    one copy of X and the running sums, whatever ``n_samples`` is, beside the wrapped explainer's
    own (bounded by its ``internal_batch_size``).

    Parameters
    ----------
    explainer
        An :class:`~ig_plugin.IntegratedGradients` or :class:`~ig_plugin.ExpectedGradients`.
        Baselines (IG) and the background (Expected Gradients) get no noise. A seeded
        ExpectedGradients uses the same draws for every copy (common random numbers), so the
        smoothing averages over the noise alone; with ``seed=None`` each copy draws afresh.
    nt_type
        ``"smoothgrad"``, ``"smoothgrad_sq"`` or ``"vargrad"``.
    n_samples
        Noisy copies of X (at least 1).
    stdevs
        Standard deviation of the noise, in the units of X: a number for every input, or a
        list or tuple with one per model input (checked here when the model declares its
        inputs, else at :meth:`explain`). 0 leaves an input as it is (also an integer input
        such as token ids); noise can only be added to float inputs.
    seed
        None: fresh noise on every :meth:`explain`. An int: the same noise for the same X.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from ig_plugin import IntegratedGradients, NoiseTunnel
    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs))
    >>> model.layers[1].set_weights([np.array([[1.0], [2.0], [3.0]])])
    >>> smooth = NoiseTunnel(IntegratedGradients(model), stdevs=0.0)
    >>> smooth.explain(np.ones((1, 3), dtype="float32")).attributions[0].round(4)
    array([[1., 2., 3.]], dtype=float32)
    """

    def __init__(
        self,
        explainer: IntegratedGradients | ExpectedGradients,
        nt_type: str = "smoothgrad",
        n_samples: int = 5,
        stdevs: float | tuple[float, ...] | list[float] = 1.0,
        seed: int | None = None,
    ) -> None:
        if not isinstance(explainer, WRAPPABLE):
            raise TypeError(
                "`explainer` must be an ig_plugin IntegratedGradients or ExpectedGradients. "
                f"Received: {type(explainer).__name__}"
            )
        self.explainer = explainer
        self.nt_type = check_nt_type(nt_type)
        self.n_samples = check_n_samples(n_samples)
        declared = declared_inputs(explainer.model)
        self.stdevs = check_stdevs(stdevs, None if declared is None else len(declared))
        self.seed = check_seed(seed)
        super().__init__(meta=whitebox_local_meta())
        self.meta["params"].update(
            nt_type=self.nt_type,
            n_samples=self.n_samples,
            stdevs=list(self.stdevs) if isinstance(self.stdevs, tuple) else self.stdevs,
            seed=self.seed,
            explainer={
                "name": explainer.meta["name"],
                "params": copy.deepcopy(explainer.meta["params"]),
            },
        )

    @property
    def model(self) -> Any:
        """The wrapped explainer's model."""
        return self.explainer.model

    @property
    def predictor(self) -> Any:
        """The model (the name ``alibi.saving.save_explainer`` reads and sets)."""
        return self.explainer.model

    @predictor.setter
    def predictor(self, model: Any) -> None:
        self.explainer.model = model

    def reset_predictor(self, predictor: Any) -> None:
        """Explain ``predictor`` from now on: see the wrapped explainer's ``reset_predictor``."""
        self.explainer.reset_predictor(predictor)

    def save(self, path: str | os.PathLike) -> None:
        """Save NoiseTunnel and the wrapped explainer to the folder ``path`` (alibi's layout)."""
        _saving.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, predictor: Any) -> NoiseTunnel:
        """Load a NoiseTunnel saved with :meth:`save`; ``predictor`` is the model to explain.

        Raises
        ------
        FileNotFoundError, ValueError
            As for :meth:`IntegratedGradients.load <ig_plugin.IntegratedGradients.load>`.
        """
        explainer: NoiseTunnel = _saving.load(cls, path, predictor)
        return explainer

    def explain(self, X: ArrayOrList, **explain_kwargs: Any) -> Explanation:
        """Explain noisy copies of X with the wrapped explainer and combine the attributions.

        Parameters
        ----------
        X
            As the wrapped explainer takes it.
        **explain_kwargs
            The wrapped explainer's ``explain`` arguments (``target``, ``baselines``,
            ``forward_kwargs``, ...), passed unchanged to every copy. A ``target_fn`` of the
            wrapped explainer is applied once, to the predictions on X without noise, and those
            targets are explained in every copy (noise must not change which output is
            explained).

        Returns
        -------
        alibi.api.interfaces.Explanation
            ``data`` holds ``attributions`` (combined as ``nt_type`` says, one array per input
            or layer tensor, in its dtype), ``X`` (without noise), ``forward_kwargs``,
            ``predictions`` (the model output on X without noise), ``target``, and ``deltas``:
            the mean over the copies of their deltas. For smoothgrad that is also
            ``sum(attributions) - mean over copies of (F(x + noise) - F(start))``: the
            completeness gap of the smoothed attributions. IntegratedGradients adds
            ``baselines``; ExpectedGradients ``expected_value``, averaged over the copies.
        """
        wrapped = self.explainer
        wrapped.validate(X, **explain_kwargs)
        request = prepare_request(
            wrapped,
            X,
            forward_kwargs=explain_kwargs.get("forward_kwargs"),
            output=explain_kwargs.get("output"),
            with_baselines=False,  # wrapped.validate checked them; only X is needed here
        )
        arrays = request.inputs.arrays
        stdevs = self._per_input(arrays, request.inputs.names)
        # The model output on X itself: what the explanation reports, and what target_fn sees.
        compiled = wrapped._compiled_model()
        predictions, _ = compiled.forward(
            arrays, request.call, request.kwargs, wrapped.internal_batch_size
        )
        explaining: Wrapped = wrapped
        if wrapped.target_fn is not None:
            rule = choose_rule(None, None, wrapped.target_fn, predictions)
            explaining = _without_target_fn(wrapped)
            explain_kwargs = {**explain_kwargs, "target": rule.target}
        entropy = fresh_entropy() if self.seed is None else self.seed
        smoother, deltas, expected = Smoother(self.nt_type), RunningMoments(), RunningMoments()
        for copy_index in range(self.n_samples):
            noisy = noisy_copy(arrays, stdevs, entropy, copy_index)
            explanation = explaining.explain(request.inputs.model_input(noisy), **explain_kwargs)
            smoother.add(explanation.attributions)
            deltas.add(explanation.deltas)
            if "expected_value" in explanation.data:
                expected.add(explanation.data["expected_value"])
        data: dict[str, Any] = {
            "attributions": smoother.result([a.dtype for a in explanation.attributions]),
            "X": X,
            "forward_kwargs": explanation.data["forward_kwargs"],
            "predictions": predictions,
            "deltas": deltas.mean,
            "target": explanation.data["target"],
        }
        if "baselines" in explanation.data:
            data["baselines"] = explanation.data["baselines"]
        if expected.count:
            data["expected_value"] = expected.mean
        return Explanation(meta=copy.deepcopy(self.meta), data=data)

    def _per_input(self, arrays: tuple[np.ndarray, ...], names: tuple[str, ...]) -> list[float]:
        """One standard deviation per input; noise only where the input holds floats."""
        if isinstance(self.stdevs, tuple):
            if len(self.stdevs) != len(arrays):
                raise ValueError(
                    f"`stdevs` as a sequence must have one value per input of X ({len(arrays)}). "
                    f"Received: {len(self.stdevs)} values."
                )
            stdevs = list(self.stdevs)
        else:
            stdevs = [self.stdevs] * len(arrays)
        for x, stdev, name in zip(arrays, stdevs, names, strict=True):
            if stdev > 0 and x.dtype.kind != "f":
                raise ValueError(
                    f"`{name}` holds {x.dtype} values (ids, fed to the model unchanged), to which "
                    "noise cannot be added: give that input a standard deviation of 0 in "
                    f"`stdevs` (a tuple, one per input). Received: stdevs={self.stdevs!r}."
                )
        return stdevs


def _without_target_fn(explainer: Wrapped) -> Wrapped:
    """A shallow copy of ``explainer`` that takes explicit targets instead of its target_fn.

    It shares the model, the layer and the compiled passes (no new tracing).
    """
    clone = copy.copy(explainer)
    clone.__dict__["_compiled"] = explainer._compiled_model()
    clone.target_fn = None
    clone.meta = copy.deepcopy(explainer.meta)
    clone.meta["params"]["target_fn"] = None
    clone.params = clone.meta["params"]
    return clone
