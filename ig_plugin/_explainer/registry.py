"""The explainer classes that a saved folder can be loaded as, by the name its ``meta.dill``
records (alibi's ``meta["name"]``, the class name).

Every public explainer class registers itself with the :func:`saved_explainer` class decorator;
:func:`load_saved` then loads any folder that one of them saved, for the command line, the batch
workers and the serving runtime alike, with nothing to import beforehand: unpickling the
folder's ``explainer.dill`` imports the module of the class it holds, which registers that
class, and the folder is accepted only if that class is registered under the name its metadata
records. Loading unpickles the folder's files, which can run code: load only folders you trust.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ig_plugin._explainer import saving

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class SavedClass:
    """One explainer class that saves and loads.

    Attributes
    ----------
    cls
        The class; ``cls.load(folder, model)`` reads a folder its ``save`` wrote.
    wraps
        For an explainer that wraps another one (NoiseTunnel, XRAI), the attribute holding the
        wrapped explainer; None for an explainer of a model.
    """

    cls: type[Any]
    wraps: str | None = None

    @property
    def name(self) -> str:
        """The name a saved folder's metadata records for this class."""
        return self.cls.__name__


_REGISTERED: dict[str, SavedClass] = {}


def saved_explainer(*, wraps: str | None = None) -> Callable[[T], T]:
    """Class decorator: register a public explainer class for :func:`load_saved`.

    Parameters
    ----------
    wraps
        The attribute that holds the wrapped explainer, for an explainer that wraps another.
    """

    def register(cls: T) -> T:
        _REGISTERED[cls.__name__] = SavedClass(cls, wraps)
        return cls

    return register


def registered_names() -> list[str]:
    """The names of the classes registered so far (those whose modules are imported)."""
    return sorted(_REGISTERED)


def registered(explainer: Any) -> SavedClass:
    """The registration of ``explainer``'s class.

    Raises
    ------
    TypeError
        Its class is not a registered ig_plugin explainer.
    """
    entry = _REGISTERED.get(type(explainer).__name__)
    if entry is None or type(explainer) is not entry.cls:
        raise TypeError(
            f"Expected an ig_plugin explainer ({', '.join(registered_names())}). Received: a "
            f"{type(explainer).__module__}.{type(explainer).__name__}."
        )
    return entry


def model_explainer(explainer: Any) -> Any:
    """The explainer of the model inside ``explainer``: itself, or the one it wraps, through
    any number of wrappers (XRAI over NoiseTunnel over IntegratedGradients). Its layer,
    ``target_fn``, ``internal_batch_size`` and ``explain`` arguments are the ones that apply."""
    entry = registered(explainer)
    while entry.wraps is not None:
        explainer = getattr(explainer, entry.wraps)
        entry = registered(explainer)
    return explainer


def saved_name(folder: str | os.PathLike) -> Any:
    """The explainer name recorded in ``folder``'s meta.dill (None if it records none).

    Raises
    ------
    FileNotFoundError
        The folder has no meta.dill.
    ValueError
        meta.dill cannot be unpickled.
    """
    meta = saving.read(Path(folder) / saving.META_FILE)
    return meta.get("name") if isinstance(meta, dict) else None


def load_saved(folder: str | os.PathLike, model: Any) -> Any:
    """The explainer saved in ``folder``, of whichever registered class, attached to ``model``
    (what that class's ``load`` does).

    Raises
    ------
    FileNotFoundError
        The folder or one of its files is missing.
    ValueError
        A file cannot be unpickled, the folder holds no ig_plugin explainer (or not the one
        its metadata names), or the model does not fit the saved explainer.
    """
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"No saved explainer folder at {os.fspath(folder)!r}.")
    name = saved_name(path)
    explainer = saving.read(path / saving.EXPLAINER_FILE)  # imports, so registers, its class
    entry = _REGISTERED.get(name) if isinstance(name, str) else None
    if entry is None or type(explainer) is not entry.cls:
        raise ValueError(
            f"{os.fspath(folder)!r} does not hold a saved ig_plugin explainer: its metadata "
            f"names {name!r} and its {saving.EXPLAINER_FILE} holds a "
            f"{type(explainer).__module__}.{type(explainer).__name__} (ig_plugin's explainers: "
            f"{', '.join(registered_names())})."
        )
    explainer.reset_predictor(model)
    return explainer
