"""Integrated Gradients over a Ray Data dataset: a pool of actors that each load the model once.

Needs the ``ray`` extra: ``pip install "ig_plugin[ray]"``. Ray is imported when
:func:`explain_dataset` is called, so ``import ig_plugin`` never imports it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ig_plugin._batch.model_check import RowsToCheck
from ig_plugin._batch.worker import (
    BatchExplainer,
    CheckedBatchExplainer,
    Columns,
    ExplainerSettings,
)
from ig_plugin._request.checks import check_scalar

if TYPE_CHECKING:
    import ray.data

__all__ = ["explain_dataset"]


def _columns(
    feature_column: str | Sequence[str], target_column: str | None, id_column: str
) -> Columns:
    if isinstance(feature_column, str):
        features: str | tuple[str, ...] = feature_column
    elif (
        isinstance(feature_column, Sequence)
        and feature_column
        and all(isinstance(name, str) for name in feature_column)
    ):
        features = tuple(feature_column)
    else:
        raise TypeError(
            "`feature_column` must be a column name or a non-empty list of column names. "
            f"Received: {feature_column!r}"
        )
    for name, value in (("target_column", target_column), ("id_column", id_column)):
        if not (isinstance(value, str) or (value is None and name == "target_column")):
            raise TypeError(f"`{name}` must be a column name. Received: {value!r}")
    return Columns(features=features, target=target_column, row_id=id_column)


#: Most ``batch_size`` batches an actor takes per Ray call; it explains them ``batch_size`` rows
#: at a time. Ray slices, converts and hands over each batch it calls an actor with, a few
#: milliseconds whatever its rows: with a call per 256-row batch one actor explained workload 4
#: 1.3x slower per row than the same loop without Ray, and with 4,096-row calls at the plain
#: loop's rate (``benchmarks/ray_per_batch.py``, 2 cores).
BATCHES_PER_CALL = 16

#: Most bytes of features per Ray call, so that an actor's share of the work stays about two
#: batches' worth of memory for large rows (images) and only small rows go 16 batches at a time.
CALL_BYTES = 32 * 1024 * 1024


def _rows_per_call(dataset: ray.data.Dataset, columns: Columns, batch_size: int) -> int:
    """Rows per Ray call to an actor: up to :data:`BATCHES_PER_CALL` batches whose features fit
    :data:`CALL_BYTES`, by the schema Ray already knows; one batch when it knows none."""
    row_bytes = _feature_row_bytes(dataset, columns)
    if row_bytes is None:
        return batch_size
    fitting = CALL_BYTES // max(1, row_bytes * batch_size)
    return batch_size * max(1, min(BATCHES_PER_CALL, fitting))


def _feature_row_bytes(dataset: ray.data.Dataset, columns: Columns) -> int | None:
    """Bytes of one row's features, from the schema if Ray knows it (tensor or scalar columns of
    fixed size), else None."""
    schema = dataset.schema(fetch_if_missing=False)
    if schema is None:
        return None
    names = (columns.features,) if isinstance(columns.features, str) else columns.features
    types: dict[str, Any] = dict(zip(schema.names, schema.types, strict=True))
    total = 0
    for name in names:
        kind = types.get(name)
        if kind is None:
            return None
        try:
            shape = getattr(kind, "shape", ())
            scalar = getattr(kind, "value_type", kind)
            if any(d is None for d in shape):
                return None  # tensors of varying shapes
            total += math.prod(shape) * scalar.bit_width // 8
        except (AttributeError, TypeError, ValueError):  # a type of no fixed width
            return None
    return total


def _check_schema(dataset: ray.data.Dataset, columns: Columns) -> None:
    # Only a schema Ray already knows: asking for one may run the whole upstream pipeline.
    schema = dataset.schema(fetch_if_missing=False)
    if schema is None:
        return
    missing = [name for name in columns.required() if name not in schema.names]
    if missing:
        raise ValueError(
            f"The dataset has no column {missing[0]!r}. Its columns: {list(schema.names)}."
        )


def explain_dataset(
    dataset: ray.data.Dataset,
    model_uri: str | os.PathLike,
    explainer_uri: str | os.PathLike | None = None,
    *,
    feature_column: str | Sequence[str] = "features",
    target_column: str | None = None,
    id_column: str = "row_id",
    actors: int = 2,
    batch_size: int = 256,
    cpus_per_actor: float = 1,
    gpus_per_actor: float = 0,
    n_steps: int | None = None,
    method: str | None = None,
    internal_batch_size: int | str | None = None,
    memory_budget: int | None = None,
    _worker: type[BatchExplainer] = BatchExplainer,  # private: tests give one that fails
    _rows_check: RowsToCheck | None = None,  # private: the command line's rows, see below
) -> ray.data.Dataset:
    """Explain every row of a Ray dataset with Integrated Gradients, on a pool of Ray actors.

    Each actor loads the model (and the saved explainer) once, then explains batch after batch
    with :meth:`ig_plugin.IntegratedGradients.explain`. The result is lazy, like every Ray
    dataset: it runs when consumed (``write_parquet``, ``iter_batches``, ``materialize``).

    Parameters
    ----------
    dataset
        The rows to explain.
    model_uri
        A Keras model file (.keras or .h5) that every Ray worker can read (a shared file system,
        or a file shipped with the job's ``runtime_env``).
    explainer_uri
        A folder written by :meth:`ig_plugin.IntegratedGradients.save`, readable by every worker;
        None for a new explainer (see ``n_steps``, ``method``, ``internal_batch_size``,
        ``memory_budget``).
    feature_column
        The column holding each row's model input (a tensor column), or a list of scalar
        columns stacked in that order into one feature vector per row.
    target_column
        A column of targets: an int per row, or for outputs of rank > 2 a row of indices. None:
        the saved explainer's ``target_fn`` if it has one, else the predicted class (argmax) for
        outputs wider than 1, else the output itself (regression).
    id_column
        A column that identifies each row (ints, strings...), copied to the result: Ray does not
        keep the order of rows, so join or sort on it.
    actors
        Actors in the pool, each holding one copy of the model.
    batch_size
        Rows per ``explain`` call. Where the dataset's schema gives the features' size, Ray
        hands an actor up to 16 batches at once (at most 32 MiB of features), which it
        explains ``batch_size`` rows at a time: Ray's cost per call is paid per 16 batches. An
        actor holds those rows with their attributions, plus the explainer's working memory
        (see ``internal_batch_size``) once per ``explain`` call it runs at once.
    cpus_per_actor
        CPUs Ray reserves for each actor; TensorFlow in the actor gets as many intra-op threads,
        so actors sharing a machine do not oversubscribe its cores. An actor with 2 or more
        runs two ``explain`` calls at once (one with ``internal_batch_size="auto"``, whose
        budget is per call), which fills cores that one call on a small model leaves idle.
    gpus_per_actor
        GPUs Ray reserves for each actor: 1 gives each actor its own GPU (then ``actors`` is at
        most the number of GPUs in the cluster).
    n_steps, method, internal_batch_size, memory_budget
        Arguments of a new :class:`~ig_plugin.IntegratedGradients` (its defaults if None; an
        ``internal_batch_size`` of ``"auto"`` chooses each actor's gradient batches from
        ``memory_budget``, or from a quarter of the memory its process sees); not allowed with
        ``explainer_uri``, which brings its own.

    Returns
    -------
    ray.data.Dataset
        One row per input row, with the columns ``id_column``, ``attributions`` (the row's
        attributions, shaped like its features), ``delta`` (the completeness gap),
        ``prediction`` (the model's output) and, when a target was explained, ``target``.

    Raises
    ------
    TypeError, ValueError
        An argument is of the wrong type or out of range, explainer settings are given with a
        saved explainer, or a column is missing from a dataset whose schema is known.

    Examples
    --------
    >>> import ray  # doctest: +SKIP
    >>> from ig_plugin.distributed import explain_dataset
    >>> rows = ray.data.read_parquet("s3://bucket/day/")  # doctest: +SKIP
    >>> explained = explain_dataset(rows, "/shared/model.keras", feature_column=["a", "b", "c"],
    ...                             id_column="request_id", actors=4)  # doctest: +SKIP
    >>> explained.write_parquet("s3://bucket/explanations/day/")  # doctest: +SKIP
    """
    import ray.data

    if not isinstance(dataset, ray.data.Dataset):
        raise TypeError(f"`dataset` must be a ray.data.Dataset. Received: {type(dataset).__name__}")
    if not isinstance(model_uri, (str, os.PathLike)):
        raise TypeError(f"`model_uri` must be a path. Received: {type(model_uri).__name__}")
    if explainer_uri is not None and not isinstance(explainer_uri, (str, os.PathLike)):
        raise TypeError(
            f"`explainer_uri` must be None or a path. Received: {type(explainer_uri).__name__}"
        )
    check_scalar("actors", actors, least=1)
    check_scalar("batch_size", batch_size, least=1)
    check_scalar("cpus_per_actor", cpus_per_actor, float, least=1)
    check_scalar("gpus_per_actor", gpus_per_actor, float, least=0)
    settings = ExplainerSettings(n_steps, method, internal_batch_size, memory_budget)
    settings.check_for(explainer_uri, lambda name: f"`{name}`")
    columns = _columns(feature_column, target_column, id_column)
    _check_schema(dataset, columns)
    worker: type[BatchExplainer | CheckedBatchExplainer] = _worker
    arguments: dict[str, Any] = {
        "model_uri": os.fspath(model_uri),
        "explainer_uri": None if explainer_uri is None else os.fspath(explainer_uri),
        "settings": settings,
        "columns": columns,
        "intra_op_threads": max(1, int(cpus_per_actor)),
        "rows_per_explain": batch_size,
    }
    if _rows_check is not None:
        # The command line's rows are checked by the actors, which load the model anyway: its
        # own process then imports no TensorFlow (see CheckedBatchExplainer).
        worker = CheckedBatchExplainer
        arguments = {"rows_check": _rows_check, "worker_class": _worker, **arguments}
    return dataset.map_batches(
        worker,
        fn_constructor_kwargs=arguments,
        batch_size=_rows_per_call(dataset, columns, batch_size),
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor,
        # No max_restarts / max_task_retries: Ray Data's actor pools already restart an actor
        # that dies and retry the batch it held, without limit (and Ray 2.60 deprecates passing
        # them through map_batches).
    )
