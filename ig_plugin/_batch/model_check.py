"""Whether a dataset's rows and targets fit a model, checked once before any row is explained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RowsToCheck:
    """What the check of a dataset needs of it: its shape, first row and targets, not its rows,
    so that every Ray actor can be handed it.

    Attributes
    ----------
    name
        How messages name the data (``DATA 'rows.npy'`` on the command line).
    shape
        The whole data's shape.
    first_row
        The data's first row, leading axis 1: its shape and dtype stand for every row.
    targets
        All the targets, or None.
    """

    name: str
    shape: tuple[int, ...]
    first_row: np.ndarray
    targets: np.ndarray | None = None

    @classmethod
    def of(cls, data: np.ndarray, targets: np.ndarray | None, name: str) -> RowsToCheck:
        """The rows of ``data`` (named ``name``) and their ``targets``, to check."""
        return cls(name, tuple(data.shape), np.array(data[:1]), targets)  # a copy, not a view


@dataclass(frozen=True)
class ModelCheck:
    """What a dataset's rows and targets must fit: the model, and what its explainer adds.

    Attributes
    ----------
    model
        The model the rows go to.
    takes_ids
        Whether the explainer attributes to a layer, so that integer rows (token ids) are fine.
    explains_predicted_class
        Whether rows without targets explain the class the model predicts, which takes an
        output with one class axis.
    """

    model: Any
    takes_ids: bool = False
    explains_predicted_class: bool = False

    def model_rows(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` as ``explain`` will see them, after the core's checks against the model's
        declared input (its count, shape and dtype; integer ids need a layer)."""
        from ig_plugin._model.signature import signature_of
        from ig_plugin._request.inputs import normalise_inputs

        signature = signature_of(self.model)
        declared = signature.inputs
        if declared and len(declared) != 1:
            raise ValueError(
                f"The model has {len(declared)} inputs; batch explanations support models with "
                "one input."
            )
        return normalise_inputs(rows, signature, self.takes_ids).arrays[0]

    def check_shape(self, shape: tuple[int, ...], name: str) -> None:
        """A ValueError giving ``name``'s whole ``shape`` if its rows are not shaped like the
        model's declared input (:meth:`check` sees one row only, so its message cannot)."""
        from ig_plugin._model.signature import signature_of
        from ig_plugin._request.inputs import check_shape

        declared = signature_of(self.model).inputs
        if len(declared) == 1:  # nothing declared, or several inputs (which check() refuses)
            check_shape(shape, declared[0], name)

    def check_rows(self, rows: RowsToCheck) -> None:
        """:meth:`check_shape` of all the ``rows`` (named as they say), then :meth:`check` of
        their first row and of their targets."""
        self.check_shape(rows.shape, rows.name)
        self.check(rows.first_row, rows.targets)

    def output_shape(self, first_rows: np.ndarray) -> tuple[int, ...]:
        """The model's output shape per sample, from one forward pass on ``first_rows``."""
        outputs = self.model(self.model_rows(first_rows), training=False)
        if isinstance(outputs, (list, tuple, dict)):
            raise ValueError(
                f"The model has {len(outputs)} output tensors; batch explanations support "
                "models with one output."
            )
        return tuple(outputs.shape[1:])

    def check(self, first_rows: np.ndarray, targets: np.ndarray | None = None) -> None:
        """Check data and targets against the model before any batch is explained.

        Parameters
        ----------
        first_rows
            The data's first row (leading axis 1): its shape and dtype stand for every row.
        targets
            All the targets, if given, checked against the model's output.

        Raises
        ------
        TypeError
            The rows cannot be explained as they are (e.g. integer ids without a layer).
        ValueError
            The model has several inputs or outputs, a row's shape is not what the model
            declares, or the targets do not fit the model's output.
        """
        from ig_plugin._request.targets import normalise_target, target_rule

        output_shape = self.output_shape(first_rows)  # checks the rows against the model
        if targets is not None:
            target_rule(normalise_target(targets, len(targets)), output_shape)
        elif self.explains_predicted_class and len(output_shape) > 1:
            raise ValueError(
                f"The model's output has shape {output_shape} per sample: give targets, one row "
                f"of {len(output_shape)} indices per sample."
            )
