"""The command line's files: reading the data and the targets, writing the result atomically.

Everything here is numpy (and pyarrow for parquet) and runs before any TensorFlow work, so a bad
file fails at once with a message that names it. Problems with the user's files are ValueErrors,
FileNotFoundError or OutputNotWritable: the command line turns them into exit code 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ig_plugin._explainer.saving import write_temporary

#: What DATA may be, by extension.
DATA_EXTENSIONS = (".npy", ".parquet")


def check_input_file(path: Path, name: str, extensions: tuple[str, ...]) -> None:
    """An existing file with one of ``extensions``; else a ValueError or FileNotFoundError."""
    if path.suffix.lower() not in extensions:
        raise ValueError(
            f"{name} must be a {' or '.join(extensions)} file. Received: {str(path)!r} "
            f"(unknown extension {path.suffix or '(none)'!r})."
        )
    if not path.is_file():
        raise FileNotFoundError(f"{name} {str(path)!r} does not exist or is not a file.")


class OutputNotWritable(OSError):
    """OUT cannot be written: its folder refuses new files, it is a folder, or the disk is full.

    The message names OUT, never the temporary file the output is first written to.
    """


def check_output_file(path: Path) -> None:
    """OUT must be a .npz file that can be created in an existing folder, checked before any
    work is done by creating (and removing) a temporary file beside it.

    A real file is tried because permission bits do not tell: root ignores them, and a
    read-only or immutable file system, ``/proc`` or ``/sys`` refuse new files whatever they say.
    """
    if path.suffix.lower() != ".npz":
        raise ValueError(f"--output must be a .npz file. Received: {str(path)!r}.")
    if path.is_dir():
        raise OutputNotWritable(f"--output {str(path)!r} is a folder: give the path of a file.")
    if not path.parent.is_dir():
        what = "is not a folder" if path.parent.exists() else "does not exist"
        raise FileNotFoundError(f"--output's folder {str(path.parent)!r} {what}.")
    try:
        probe = write_temporary(path.parent, path.name, lambda f: None)
    except OSError as error:
        raise OutputNotWritable(
            f"--output {str(path)!r} cannot be written: its folder refuses a new file "
            f"({_reason(error)})."
        ) from error
    probe.unlink()


def _reason(error: OSError) -> str:
    """What went wrong, without the file name (which may be the temporary file's)."""
    return error.strerror or str(error)


#: Bytes of rows checked at a time, so that a memory-mapped file is never read whole.
_CHECK_BYTES = 8 * 2**20


def _check_finite(array: np.ndarray, name: str) -> None:
    # Integer ids (token inputs) are always finite; only floats can hold NaN. Checked up front
    # (a bad row found after hours of explaining would lose them), a block of rows at a time.
    if array.dtype.kind != "f" or not len(array):
        return
    block = max(1, _CHECK_BYTES // max(1, array[:1].nbytes))
    for first in range(0, len(array), block):
        rows = np.asarray(array[first : first + block])
        finite = np.isfinite(rows).reshape(len(rows), -1).all(axis=1)
        if not finite.all():
            raise ValueError(
                f"{name} contains NaN or infinity (first at row {first + int(np.argmin(finite))}):"
                " attributions would be undefined. Drop or impute those rows first."
            )


def read_npy(path: Path) -> np.ndarray:
    """Rows are samples. Memory-mapped: the rows are read batch by batch, not all at once."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:  # object arrays (pickles) are refused, not executed
        raise ValueError(
            f"DATA {str(path)!r} could not be read as a numpy array: {error}"
        ) from None
    if not isinstance(array, np.ndarray) or array.ndim == 0 or array.shape[0] == 0:
        raise ValueError(
            f"DATA {str(path)!r} must hold an array with one row per sample. "
            f"Received: shape {getattr(array, 'shape', None)}."
        )
    if array.dtype.kind not in "iubf":
        raise ValueError(f"DATA {str(path)!r} must hold numbers. Received: dtype {array.dtype}.")
    _check_finite(array, f"DATA {str(path)!r}")
    return array


def read_parquet(path: Path) -> np.ndarray:
    """Every column is a feature: an ``(N, n_columns)`` array.

    Columns keep their common float type (float64 if any column is float64); integer and
    boolean tables are read as float32, the type Keras models take by default.
    """
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(
            "Reading .parquet needs pyarrow: pip install 'ig_plugin[parquet]' (or "
            "'ig_plugin[ray]'), or pass a .npy file."
        ) from None
    import pyarrow as pa

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"DATA {str(path)!r} could not be read as parquet: {error}") from None
    if table.num_columns == 0 or table.num_rows == 0:
        raise ValueError(
            f"DATA {str(path)!r} must have at least one column and one row. "
            f"Received: {table.num_rows} rows, {table.num_columns} columns."
        )
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if not (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        ):
            raise ValueError(
                f"DATA {str(path)!r}: every column must be a numeric feature. "
                f"Received: column {name!r} of type {kind}."
            )
        if column.null_count:
            raise ValueError(
                f"DATA {str(path)!r}: column {name!r} has {column.null_count} missing values."
            )
    columns = [column.to_numpy() for column in table.columns]
    floats = [column.dtype for column in columns if column.dtype.kind == "f"]
    array = np.column_stack(columns).astype(np.result_type(*floats) if floats else np.float32)
    _check_finite(array, f"DATA {str(path)!r}")
    return array


def read_data(path: Path) -> np.ndarray:
    """DATA as an array with one row per sample (.npy or .parquet)."""
    check_input_file(path, "DATA", DATA_EXTENSIONS)
    return read_npy(path) if path.suffix.lower() == ".npy" else read_parquet(path)


def read_targets(path: Path, n_samples: int) -> np.ndarray:
    """--target-file: one int per sample, ``(N,)``, or one row of indices per sample ``(N, k)``."""
    check_input_file(path, "--target-file", (".npy",))
    try:
        targets = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"--target-file {str(path)!r} could not be read: {error}") from None
    if targets.dtype.kind not in "iu" or targets.ndim not in (1, 2):
        raise ValueError(
            f"--target-file must hold integers, shape (N,) or (N, k). Received: dtype "
            f"{targets.dtype}, shape {targets.shape}."
        )
    if targets.shape[0] != n_samples:
        raise ValueError(
            f"--target-file must have one entry per row of DATA ({n_samples}). "
            f"Received: shape {targets.shape}."
        )
    return targets


def write_npz_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` so that it is either complete or absent, never partial.

    The file is written under a temporary name in the same folder (the same file system), then
    renamed over ``path`` in one step. On failure the temporary file is removed and an
    :class:`OutputNotWritable` names ``path``.
    """
    try:
        temporary = write_temporary(path.parent, path.name, lambda f: np.savez(f, **arrays))
        try:
            os.replace(temporary, path)
        except BaseException:  # also SIGTERM's Terminated, which may come after the rename
            temporary.unlink(missing_ok=True)
            raise
    except OSError as error:  # a full disk, OUT made a folder or immutable since the check
        raise OutputNotWritable(
            f"--output {str(path)!r} could not be written ({_reason(error)}): left as it was."
        ) from error
