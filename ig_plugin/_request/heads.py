"""Targets on several outputs of one model (its heads), explained from one forward pass per point.

``explain(..., targets={head: targets, ...})``: each key names an output tensor as ``output=``
does (its position, or its name among the model's outputs), and each value is what ``targets=``
takes for that output alone (``"all"``, K class indices, K index tuples ...). An intent and
per-token tags, or a question-answering model's start and end logits, are explained together.

The heads' targets line up on one K axis, in the dict's order: with ``K_h`` targets on head
``h``, attributions are ``(N, K_1 + K_2 + ..., *features)`` and ``deltas`` ``(N, K_1 + K_2 +
...)``; the explanation's ``heads`` names the head of each of the K, and its ``target`` and
``predictions`` are dicts by head.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from ig_plugin._request.outputs import OutputPick, check_pick
from ig_plugin._request.rules import TargetRule
from ig_plugin._request.targets import choose_rule, normalise_targets

#: What ``ModelCall.pick`` holds: one output, or the heads' picks in order.
Picks = OutputPick | tuple[OutputPick, ...]


@dataclass(frozen=True)
class HeadsRule:
    """The target rules of several outputs, one per head, explained together.

    Attributes
    ----------
    picks
        The heads, as the caller named them (positions or names), in order.
    rules
        Each head's rule: K targets per sample on that output.
    """

    picks: tuple[OutputPick, ...]
    rules: tuple[TargetRule, ...]

    @property
    def kind(self) -> tuple[Any, ...]:
        """Each head's :class:`~ig_plugin._request.rules.TargetKind`."""
        return tuple(rule.kind for rule in self.rules)

    @property
    def target(self) -> tuple[np.ndarray | None, ...]:
        """Each head's targets, ``(N, K_h)`` or ``(N, K_h, k)``."""
        return tuple(rule.target for rule in self.rules)

    @property
    def many(self) -> bool:
        """Always: the heads' targets share a K axis."""
        return True

    @property
    def n_targets(self) -> int:
        """K, the targets of every head together."""
        return sum(rule.n_targets for rule in self.rules)

    def rows(self, samples: np.ndarray | slice) -> HeadsRule:
        """The rule for some of the samples only."""
        return HeadsRule(self.picks, tuple(rule.rows(samples) for rule in self.rules))

    def reported(self, predictions: tuple[np.ndarray, ...]) -> dict[str, Any]:
        """``predictions`` and ``target`` as dicts by head, and ``heads``: the head of each of
        the K targets."""
        return {
            "predictions": dict(zip(self.picks, predictions, strict=True)),
            "target": dict(zip(self.picks, self.target, strict=True)),
            "heads": [
                pick
                for pick, rule in zip(self.picks, self.rules, strict=True)
                for _ in range(rule.n_targets)
            ],
        }


@dataclass(frozen=True)
class HeadTargets:
    """``targets`` given as a dict by output, checked (each head's as ``targets=`` is).

    Attributes
    ----------
    picks
        The heads, in the dict's order.
    targets
        Each head's normalised targets (see
        :func:`~ig_plugin._request.targets.normalise_targets`).
    """

    picks: tuple[OutputPick, ...]
    targets: tuple[np.ndarray | str, ...]

    def rule(self, predictions: tuple[np.ndarray, ...]) -> HeadsRule:
        """Match each head's targets with its output: ``predictions`` has one array per head.

        Raises
        ------
        ValueError
            A head's targets do not fit its output; the message names the head.
        """
        rules = []
        for pick, targets, outputs in zip(self.picks, self.targets, predictions, strict=True):
            try:
                # Each head's targets are an array or "all", so its rule is a TargetRule.
                rule = cast(TargetRule, choose_rule(None, targets, None, outputs))
            except ValueError as error:
                raise ValueError(f"`targets[{pick!r}]`: {error}") from None
            rules.append(rule)
        return HeadsRule(self.picks, tuple(rules))


def check_targets_and_output(
    targets: Any, output: Any, n_rows: int
) -> tuple[np.ndarray | str | HeadTargets | None, Picks]:
    """``targets`` and ``output`` checked together: a dict of targets by output says itself
    which outputs are explained, so ``output`` must then be None.

    Returns the normalised targets and what the model call picks: ``output``'s pick, or the
    heads' picks in order.

    Raises
    ------
    TypeError, ValueError
        An argument is invalid; the message names it and says what was received.
    """
    pick = check_pick(output)
    if not isinstance(targets, Mapping):
        return (None if targets is None else normalise_targets(targets, n_rows)), pick
    if pick is not None:
        raise ValueError(
            "`output` must be None when `targets` is a dict by output: its keys say which "
            f"outputs are explained. Received: output={output!r}, targets keys "
            f"{list(targets)}."
        )
    if not targets:
        raise ValueError(
            "`targets` as a dict must name at least one output. Received: an empty dict."
        )
    picks = []
    for key in targets:
        try:
            picks.append(check_pick(key))
        except TypeError:
            raise TypeError(
                "The keys of `targets` as a dict must name outputs: a non-negative int (the "
                f"output's position) or a str (its name). Received: key {key!r}."
            ) from None
    checked = []
    for key, value in targets.items():
        try:
            checked.append(normalise_targets(value, n_rows))
        except (TypeError, ValueError) as error:
            raise type(error)(f"`targets[{key!r}]`: {error}") from None
    return HeadTargets(tuple(picks), tuple(checked)), tuple(picks)
