"""Saving and loading in alibi's layout, readable by ``alibi.saving.load_explainer`` too.

A saved explainer is a folder with ``meta.dill`` (the metadata) and ``explainer.dill`` (the
explainer without its model, layer or compiled functions: dill pickles only plain Python state,
the ``target_fn`` and a layer callable). On load the model passed in replaces what was left out.
Loading unpickles: only load folders you trust.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import dill

from ig_plugin._model.signature import signature_of
from ig_plugin._version import __version__

META_FILE, EXPLAINER_FILE = "meta.dill", "explainer.dill"

#: One model's shapes, without the batch axis: ``{"inputs": [...], "output": [...]}``, with
#: None for dimensions the model leaves open (:meth:`ModelSignature.shapes
#: <ig_plugin._model.signature.ModelSignature.shapes>`).
Signature = dict[str, Any]


def _compatible(saved: list, current: list) -> bool:
    """Shapes agree where both are known (None is an open dimension)."""
    return len(saved) == len(current) and all(
        a is None or b is None or a == b for a, b in zip(saved, current, strict=True)
    )


def check_signature(saved: Signature | None, model: Any) -> None:
    """Refuse a model whose declared shapes differ from those of the model saved with.

    Raises
    ------
    ValueError
        The model's inputs or output have other shapes than when the explainer was saved.
    """
    current = signature_of(model).shapes()
    if saved is None or current is None:
        return
    saved_inputs, current_inputs = saved["inputs"], current["inputs"]
    if len(saved_inputs) != len(current_inputs) or not all(
        _compatible(a, b) for a, b in zip(saved_inputs, current_inputs, strict=True)
    ):
        raise ValueError(
            "The model's input shapes differ from those of the model the explainer was saved "
            f"with. Saved: {saved_inputs}; received: {current_inputs} (batch axis left out)."
        )
    if not _compatible(saved["output"], current["output"]):
        raise ValueError(
            "The model's output shape differs from that of the model the explainer was saved "
            f"with. Saved: {saved['output']}; received: {current['output']} (batch axis left out)."
        )


def warn_if_other_version(saved_with: str | None) -> None:
    if saved_with != __version__:
        warnings.warn(
            f"This explainer was saved with ig_plugin {saved_with} and is loaded by ig_plugin "
            f"{__version__}; check its explanations.",
            UserWarning,
            stacklevel=3,
        )


def write_temporary(folder: Path, name: str, write: Callable[[BinaryIO], Any]) -> Path:
    """A new hidden file in ``folder`` filled by ``write``: its path, once complete on disk.

    Renaming it over ``folder / name`` (``os.replace``, same file system) then replaces the old
    file in one step, so readers see the old file or the new one, never a partial one. It gets
    the permissions a new file gets (mkstemp makes it private); on failure it is removed.
    """
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
    except BaseException:
        os.unlink(temporary)
        raise
    return Path(temporary)


def _dump_to_temporary(folder: Path, name: str, value: Any, **options: Any) -> Path:
    """Pickle ``value`` into a new hidden file in ``folder``; its path, once complete on disk."""
    return write_temporary(folder, name, lambda f: dill.dump(value, f, **options))


def save(explainer: Any, path: str | os.PathLike) -> None:
    """Write ``explainer`` to the folder ``path`` (created if missing) in alibi's layout.

    Unlike ``alibi.saving.save_explainer``, a layer nested in a sub-model is saved too: it is
    found again on load by its path of layer names. Both files are written to temporary files
    in the folder first and renamed into place only when both are complete: a save that fails
    (a ``target_fn`` that cannot be pickled, a full disk) leaves an earlier save as it was.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        written.append(_dump_to_temporary(folder, META_FILE, copy.deepcopy(explainer.meta)))
        # The explainer's __getstate__ leaves out the model, the layer and the compiled functions.
        written.append(_dump_to_temporary(folder, EXPLAINER_FILE, explainer, recurse=True))
    except BaseException:
        for temporary in written:
            temporary.unlink()
        raise
    # Each rename is atomic. Loading checks only the metadata's name, which a new save of this
    # class does not change, so a reader between the two renames still gets a consistent pair.
    os.replace(written[1], folder / EXPLAINER_FILE)
    os.replace(written[0], folder / META_FILE)


def read(file: Path) -> Any:
    if not file.is_file():
        raise FileNotFoundError(
            f"{file} is missing: not a saved ig_plugin explainer folder "
            f"(expected {META_FILE} and {EXPLAINER_FILE})."
        )
    try:
        with open(file, "rb") as f:
            return dill.load(f)
    except Exception as error:  # any unpickling failure means the same thing to the caller
        raise ValueError(f"{file} could not be read as a saved explainer: {error!r}") from error


def load(cls: Any, path: str | os.PathLike, model: Any) -> Any:
    """Read the explainer saved in ``path`` and attach ``model`` to it.

    Raises
    ------
    FileNotFoundError
        ``path`` or one of its two files does not exist.
    ValueError
        A file cannot be unpickled, the folder holds another kind of explainer, or ``model``
        does not fit the saved explainer (see ``reset_predictor``).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"No saved explainer folder at {folder}.")
    meta = read(folder / META_FILE)
    name = meta.get("name") if isinstance(meta, dict) else None
    if name != cls.__name__:
        raise ValueError(
            f"{folder} does not hold an ig_plugin {cls.__name__}: its metadata names {name!r}."
        )
    explainer = read(folder / EXPLAINER_FILE)
    if not isinstance(explainer, cls):
        raise ValueError(
            f"{folder / EXPLAINER_FILE} holds a {type(explainer).__module__}."
            f"{type(explainer).__name__}, not an ig_plugin {cls.__name__}."
        )
    explainer.reset_predictor(model)
    return explainer
