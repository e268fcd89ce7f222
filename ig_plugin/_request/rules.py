"""The rule objects: which scalar of the model's output is explained, for each sample.

Plain values (numpy arrays, enums) that the request checks make and the passes read; the checks
that make them are :mod:`ig_plugin._request.targets` (one output) and
:mod:`ig_plugin._request.heads` (several outputs).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


class TargetKind(enum.Enum):
    """How a target picks a scalar of an output (see :mod:`ig_plugin._request.targets`).

    Attributes
    ----------
    REGRESSION
        A scalar output and no target: the output itself.
    BINARY
        A scalar output ``p`` and target 0 or 1: ``1 - p`` or ``p``.
    INDEX
        An ``(N, C)`` output: a class index.
    MULTI_INDEX
        An output of rank > 2: one index per non-batch axis.
    """

    REGRESSION = "regression"
    BINARY = "binary"
    INDEX = "index"
    MULTI_INDEX = "multi_index"


@dataclass(frozen=True)
class TargetRule:
    """How one scalar per sample is taken from the model output.

    Attributes
    ----------
    kind
        Which of the four cases of :class:`TargetKind` applies.
    target
        int64 indices: one target per sample ``(N,)`` (or ``(N, k)``, an index per output axis
        of an output of rank ``k + 1``), or K targets per sample ``(N, K)`` (or
        ``(N, K, k)``); None for regression.
    """

    kind: TargetKind
    target: np.ndarray | None

    @property
    def many(self) -> bool:
        """Several targets per sample (``explain(targets=...)``): ``target`` is ``(N, K)`` or
        ``(N, K, k)``."""
        return self.target is not None and has_many_targets(self.kind, self.target.ndim)

    @property
    def n_targets(self) -> int:
        """K, the targets per sample: ``target.shape[1]`` with several, else 1."""
        return self.target.shape[1] if self.many and self.target is not None else 1

    def rows(self, samples: np.ndarray | slice) -> TargetRule:
        """The rule for some of the samples only."""
        return self if self.target is None else TargetRule(self.kind, self.target[samples])

    def reported(self, predictions: np.ndarray) -> dict[str, Any]:
        """The explanation's ``predictions`` and ``target``."""
        return {"predictions": predictions, "target": self.target}


class Rule(Protocol):
    """What the passes read of a target rule: a :class:`TargetRule` on one output, or a
    :class:`~ig_plugin._request.heads.HeadsRule` on several."""

    @property
    def kind(self) -> Any:
        """Static in a trace: a :class:`TargetKind`, or one per output."""

    @property
    def target(self) -> Any:
        """The indices: an array, one per output, or None."""

    @property
    def many(self) -> bool: ...

    @property
    def n_targets(self) -> int: ...

    def rows(self, samples: np.ndarray | slice) -> Rule: ...

    def reported(self, predictions: Any) -> dict[str, Any]:
        """The explanation's ``predictions`` and ``target`` (and whatever else says which
        outputs were explained)."""


def has_many_targets(kind: TargetKind, target_rank: int) -> bool:
    """Whether targets of this rank (batch axis included) name several outputs per sample.

    One target per sample has rank 1, or 2 for outputs of rank > 2 (an index per axis); K
    targets per sample add an axis after the batch.
    """
    return target_rank > (2 if kind is TargetKind.MULTI_INDEX else 1)


@runtime_checkable
class MakesItsRule(Protocol):
    """Targets that make their rule from the predictions themselves: targets on several outputs
    (:class:`ig_plugin._request.heads.HeadTargets`), whose predictions are one array each."""

    def rule(self, predictions: Any) -> Rule: ...
