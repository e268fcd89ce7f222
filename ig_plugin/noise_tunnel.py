"""NoiseTunnel: SmoothGrad, SmoothGrad-squared and VarGrad over ig_plugin's explainers, as an alibi
``Explainer``."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
from alibi.api.interfaces import Explanation

from ig_plugin._explainer.base import ModelExplainer, whitebox_local_meta
from ig_plugin._explainer.registry import saved_explainer
from ig_plugin._explainer.wrapping import WrappingExplainer
from ig_plugin._integral.draws import fresh_entropy
from ig_plugin._integral.smoothing import RunningMoments, Smoother, noisy_copy
from ig_plugin._model.signature import signature_of
from ig_plugin._request import checks
from ig_plugin._request.inputs import ArrayOrList
from ig_plugin._request.targets import choose_rule


@saved_explainer(wraps="explainer")
class NoiseTunnel(WrappingExplainer):
    """Smooth the attributions of an explainer over noisy copies of X (Smilkov et al., 2017;
    Adebayo et al., 2018), with captum's ``NoiseTunnel`` names and meanings.

    Each of ``nt_samples`` copies of X gets Gaussian noise of standard deviation ``stdevs`` and is
    explained by the wrapped explainer; the copies' attributions are then combined:

    - ``"smoothgrad"``: their mean;
    - ``"smoothgrad_sq"``: the mean of their squares;
    - ``"vargrad"``: their variance, ``mean(a**2) - mean(a)**2`` (the population variance, as
      captum computes it, so its expectation is ``(nt_samples - 1) / nt_samples`` times the
      variance of one copy's attributions).

    One noisy copy is made and explained at a time, and folded into running sums: memory holds
    one copy of X and the running sums, whatever ``nt_samples`` is, beside the wrapped explainer's
    own (bounded by its ``internal_batch_size``).

    Parameters
    ----------
    explainer
        An ig_plugin explainer of a model: :class:`~ig_plugin.IntegratedGradients`,
        :class:`~ig_plugin.ExpectedGradients`, ... Baselines (IG) and the background (Expected
        Gradients) get no noise. A seeded
        ExpectedGradients uses the same draws for every copy (common random numbers), so the
        smoothing averages over the noise alone; with ``seed=None`` each copy draws afresh.
    nt_type
        ``"smoothgrad"``, ``"smoothgrad_sq"`` or ``"vargrad"``.
    nt_samples
        Noisy copies of X (at least 1).
    stdevs
        Standard deviation of the noise, in the units of X: a number for every input, or a
        list or tuple with one per model input (checked here when the model declares its
        inputs, else at :meth:`explain`). 0 leaves an input as it is (also an integer input
        such as token ids); noise can only be added to float inputs.
    seed
        None: fresh noise on every :meth:`explain`. An int: the same noise for the same X.
    n_samples
        The former name of ``nt_samples`` (deprecated).

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

    #: NoiseTunnel wraps an explainer of a model only (it calls its passes itself).
    explainer: ModelExplainer

    def __init__(
        self,
        explainer: ModelExplainer,
        nt_type: str = "smoothgrad",
        nt_samples: int = 5,
        stdevs: float | tuple[float, ...] | list[float] = 1.0,
        seed: int | None = None,
        *,
        n_samples: int | None = None,
    ) -> None:
        if not isinstance(explainer, ModelExplainer):
            raise TypeError(
                "`explainer` must be an ig_plugin explainer of a model (IntegratedGradients, "
                f"ExpectedGradients, ...). Received: {type(explainer).__name__}"
            )
        if n_samples is not None:
            warnings.warn(
                "NoiseTunnel's `n_samples` is now `nt_samples` (captum's name); `n_samples` "
                "will be removed.",
                DeprecationWarning,
                stacklevel=2,
            )
            nt_samples = n_samples
        self.explainer = explainer
        self.nt_type = checks.check_choice("nt_type", nt_type, checks.NT_TYPES)
        self.nt_samples = checks.check_scalar("nt_samples", nt_samples, least=1)
        declared = signature_of(explainer.model).inputs
        self.stdevs = checks.check_stdevs(stdevs, len(declared) if declared else None)
        self.seed = checks.check_seed(seed)
        super().__init__(meta=whitebox_local_meta())
        self.meta["params"].update(
            nt_type=self.nt_type,
            nt_samples=self.nt_samples,
            stdevs=list(self.stdevs) if isinstance(self.stdevs, tuple) else self.stdevs,
            seed=self.seed,
            explainer=self._wrapped_meta(),
        )

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
        arguments = wrapped._bind(X, **explain_kwargs)
        request, _ = wrapped._prepare(arguments)  # every check of the wrapped explainer, once
        arrays = request.inputs.arrays
        stdevs = self._per_input(arrays, request.inputs.names)
        # The model output on X itself: what the explanation reports, and what target_fn sees.
        compiled = wrapped._compiled_model()
        rows = wrapped._forward_rows(compiled, request)
        predictions, _ = compiled.forward(arrays, request.call, request.kwargs, rows)
        explaining = wrapped
        if wrapped.target_fn is not None:
            rule = choose_rule(None, None, wrapped.target_fn, predictions)
            explaining = wrapped.with_target_fn(None)
            explain_kwargs = {**explain_kwargs, "target": rule.target}
        entropy = fresh_entropy() if self.seed is None else self.seed
        smoother, deltas, expected = Smoother(self.nt_type), RunningMoments(), RunningMoments()
        for copy_index in range(self.nt_samples):
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
        if "heads" in explanation.data:  # targets on several outputs: predictions by head
            data["heads"] = explanation.data["heads"]
            data["predictions"] = dict(
                zip(explanation.data["predictions"], predictions, strict=True)
            )
        if "baselines" in explanation.data:
            data["baselines"] = explanation.data["baselines"]
        if expected.count:
            data["expected_value"] = expected.mean
        return Explanation(meta=copy.deepcopy(self.meta), data=data)

    def validate(self, X: ArrayOrList, **explain_kwargs: Any) -> None:
        """Check :meth:`explain`'s arguments without explaining, and without running the model.

        Raises
        ------
        TypeError, ValueError
            An argument is invalid; the message names it and says what was received.
        """
        request, _ = self.explainer._prepare(self.explainer._bind(X, **explain_kwargs))
        self._per_input(request.inputs.arrays, request.inputs.names)

    def __setstate__(self, state: dict) -> None:
        if "n_samples" in state:  # saved by 0.1.0, which named nt_samples n_samples
            state["nt_samples"] = state.pop("n_samples")
            params = state["meta"]["params"]
            state["meta"]["params"] = {
                ("nt_samples" if key == "n_samples" else key): value
                for key, value in params.items()
            }
            state["params"] = state["meta"]["params"]
        self.__dict__.update(state)

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
