"""What every explainer that wraps another ig_plugin explainer shares: the wrapped explainer's
model as its own, ``target_fn`` through the wrapped explainer, saving and loading.

:class:`WrappingExplainer` is the base of :class:`~ig_plugin.NoiseTunnel` and
:class:`~ig_plugin.XRAI`. Such an explainer holds no model of its own: everything about the
model (the layer, ``target_fn``, the compiled passes, what a save leaves out) belongs to the
explainer it wraps, so it only passes those requests on.
"""

from __future__ import annotations

import copy
import os
from typing import Any, TypeVar

from alibi.api.interfaces import Explainer

from ig_plugin._explainer import saving

Self = TypeVar("Self", bound="WrappingExplainer")


class WrappingExplainer(Explainer):
    """An alibi ``Explainer`` that explains through another ig_plugin explainer.

    A subclass keeps the wrapped explainer in ``self.explainer`` (the attribute its
    ``@saved_explainer(wraps="explainer")`` registration names) before it calls alibi's
    ``Explainer.__init__``, records it in its ``meta["params"]`` with :meth:`_wrapped_meta`,
    and implements ``explain``. Its own settings are plain Python or numpy values, pickled as
    they are; the wrapped explainer pickles itself without its model.
    """

    #: The wrapped explainer: a ModelExplainer, or another wrapper (XRAI over NoiseTunnel).
    explainer: Any

    def _wrapped_meta(self) -> dict[str, Any]:
        """``meta["params"]["explainer"]``: the wrapped explainer's name and a copy of its
        params (a copy, so that changing one explainer's params never changes the other's)."""
        return {
            "name": self.explainer.meta["name"],
            "params": copy.deepcopy(self.explainer.meta["params"]),
        }

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
        # Through the wrapped explainer's own setter, so that it also reaches the explainer of
        # the model through any number of wrappers.
        self.explainer.predictor = model

    def with_target_fn(self: Self, target_fn: Any) -> Self:
        """A copy whose wrapped explainer has another ``target_fn``, sharing its model, layer and
        compiled passes."""
        clone = copy.copy(self)
        clone.explainer = self.explainer.with_target_fn(target_fn)
        clone.meta = copy.deepcopy(self.meta)
        # The wrapped explainer's params now name the new target_fn: record them again.
        clone.meta["params"]["explainer"]["params"] = copy.deepcopy(clone.explainer.meta["params"])
        clone.params = clone.meta["params"]  # alibi exposes meta's keys as attributes
        return clone

    def reset_predictor(self, predictor: Any) -> None:
        """Explain ``predictor`` from now on: see the wrapped explainer's ``reset_predictor``."""
        self.explainer.reset_predictor(predictor)

    def save(self, path: str | os.PathLike) -> None:
        """Save this explainer and the wrapped explainer to the folder ``path`` (alibi's layout;
        a callable setting, such as XRAI's ``segments``, is pickled with dill, as a
        ``target_fn`` is)."""
        saving.save(self, path)

    @classmethod
    def load(cls: type[Self], path: str | os.PathLike, predictor: Any) -> Self:
        """Load an explainer saved with :meth:`save`; ``predictor`` is the model to explain.

        Raises
        ------
        FileNotFoundError, ValueError
            As for :meth:`IntegratedGradients.load <ig_plugin.IntegratedGradients.load>`.
        """
        explainer: Self = saving.load(cls, path, predictor)
        return explainer
