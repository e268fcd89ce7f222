"""What a model-settings.json asks of the runtime, checked before anything is loaded.

The runtime reads MLServer's ``parameters``: ``uri`` (a folder written by an ig_plugin
explainer's ``save``) and ``extra``, whose keys are listed in :data:`EXTRA_KEYS`. Relative
paths are relative to the folder of the model-settings.json, as MLServer resolves ``uri``, and
must stay in it unless ``extra.allow_paths_outside_folder`` is true: a saved explainer is
unpickled (which can run code) and a model file is read, so a settings file should not reach
anywhere on the server's disk by accident. That folder is the boundary, not the whole model
repository, because MLServer tells a runtime its model's settings but not where the repository
is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from mlserver.settings import ModelSettings
from mlserver.utils import to_absolute_path

from ig_plugin._request.checks import check_scalar
from ig_plugin.serving._limits import DEFAULT_MAX_SAMPLES, DEFAULT_MAX_VALUES

#: The keys of ``parameters.extra`` the runtime reads, with what each one is.
EXTRA_KEYS = {
    "model_uri": "the Keras model: a .keras or .h5 file (a SavedModel folder on Keras 2)",
    "init_parameters": "without `uri`: the explainer's constructor arguments",
    "warmup": "explain a zero input at load so the first request is not slower (default true)",
    "explain_threads": "most explanations computed at once (default 4)",
    "max_request_samples": "most samples in one request (default 1000); more get HTTP 413",
    "max_request_values": (
        "most values in all the tensors of one request (default 1,000,000); more get HTTP 413"
    ),
    "allow_paths_outside_folder": (
        "let `uri` and `model_uri` name files outside the folder of model-settings.json "
        "(default false)"
    ),
}

#: Constructor arguments that ``init_parameters`` may give (``target_fn`` needs a saved folder).
INIT_PARAMETERS = ("layer", "method", "n_steps", "internal_batch_size", "memory_budget")

DEFAULT_EXPLAIN_THREADS = 4


@dataclass(frozen=True)
class RuntimeSettings:
    """The runtime's settings for one model.

    Attributes
    ----------
    model_uri
        Absolute path of the Keras model file (or SavedModel folder).
    explainer_uri
        Absolute path of the saved explainer folder, or None to build one from
        ``init_parameters``.
    init_parameters
        Constructor arguments of a fresh explainer; ``layer`` is a layer name or index.
    warmup
        Whether loading explains a zero input once, so the compiled functions are traced.
    explain_threads
        Most explanations computed at the same time; further requests wait for a thread.
    max_request_samples, max_request_values
        Most samples, and values in all tensors, in one request.
    """

    model_uri: str
    explainer_uri: str | None
    init_parameters: dict[str, Any] = field(default_factory=dict)
    warmup: bool = True
    explain_threads: int = DEFAULT_EXPLAIN_THREADS
    max_request_samples: int = DEFAULT_MAX_SAMPLES
    max_request_values: int = DEFAULT_MAX_VALUES


def _positive_int(settings: ModelSettings, extra: dict[str, Any], key: str, default: int) -> int:
    try:
        return int(check_scalar(f"extra.{key}", extra.get(key, default), least=1))
    except (TypeError, ValueError) as error:
        raise type(error)(f"Model {settings.name!r}: {error}") from None


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([path, folder]) == folder


def _existing(settings: ModelSettings, uri: Any, name: str, anywhere: bool) -> str:
    """The absolute path ``uri`` names, checked: it exists and, unless ``anywhere``, it is in
    the folder of model-settings.json."""
    if not isinstance(uri, str) or not uri:
        raise ValueError(
            f"Model {settings.name!r}: `{name}` must be a path (str). Received: {uri!r}."
        )
    path = to_absolute_path(settings, uri)
    folder = _settings_folder(settings)
    # On the normalised path: ".." and absolute paths that lead out are refused; a symbolic
    # link inside the folder was put there by whoever deploys it, and is followed.
    if not anywhere and folder is not None and not _inside(path, folder):
        raise ValueError(
            f"Model {settings.name!r}: `{name}` is {uri!r}, which is {path}, outside the model's "
            f"folder {folder} (the folder of its model-settings.json, in the model repository). "
            "Move it into that folder, or set `extra.allow_paths_outside_folder` to true to "
            "load it from there."
        )
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"Model {settings.name!r}: `{name}` is {uri!r}, but nothing exists at {path} "
            "(relative paths start at the folder of model-settings.json)."
        )
    return path


def _check_init_parameters(settings: ModelSettings, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(
            f"Model {settings.name!r}: `extra.init_parameters` must be an object of constructor "
            f"arguments. Received: {value!r}."
        )
    unknown = sorted(set(value) - set(INIT_PARAMETERS))
    if unknown:
        raise ValueError(
            f"Model {settings.name!r}: `extra.init_parameters` may hold {list(INIT_PARAMETERS)} "
            f"(a target_fn needs a folder saved by IntegratedGradients.save, given as `uri`). "
            f"Received: {unknown}."
        )
    return dict(value)


def _settings_folder(settings: ModelSettings) -> str | None:
    source = settings._source
    return os.path.normpath(os.path.dirname(source)) if source else None


def _explainer_uri(settings: ModelSettings, fresh: bool) -> str | None:
    """``parameters.uri``, or None for a fresh explainer.

    MLServer sets a missing ``uri`` to the settings' own folder, so a saved explainer may sit
    beside model-settings.json; with ``init_parameters`` that default is ignored.
    """
    uri = settings.parameters.uri if settings.parameters is not None else None
    folder = _settings_folder(settings)
    if not fresh:
        uri = uri or folder
        beside = bool(uri) and folder is not None and to_absolute_path(settings, uri) == folder
        if not uri or (beside and not os.path.exists(os.path.join(uri, "meta.dill"))):
            raise ValueError(
                f"Model {settings.name!r}: no explainer to load. Give `parameters.uri` (a folder "
                "written by an explainer's save; by default the folder of "
                "model-settings.json) or `extra.init_parameters` (the explainer's arguments; {} "
                "for the defaults)."
            )
        return uri
    if uri and (folder is None or to_absolute_path(settings, uri) != folder):
        raise ValueError(
            f"Model {settings.name!r}: give either `parameters.uri` (a saved explainer) or "
            f"`extra.init_parameters` (a fresh one), not both. Received: uri={uri!r}."
        )
    return None


def read_settings(settings: ModelSettings) -> RuntimeSettings:
    """Check the model's ``parameters`` and return them as :class:`RuntimeSettings`.

    Raises
    ------
    FileNotFoundError
        ``uri`` or ``extra.model_uri`` names nothing.
    TypeError, ValueError
        A key is missing, unknown or of the wrong type, or a path leads out of the folder of
        model-settings.json without ``extra.allow_paths_outside_folder``.
    """
    parameters = settings.parameters
    extra = dict(parameters.extra or {}) if parameters is not None else {}
    unknown = sorted(set(extra) - set(EXTRA_KEYS))
    if unknown:
        raise ValueError(
            f"Model {settings.name!r}: unknown keys in `parameters.extra`: {unknown}. "
            f"Known keys: {list(EXTRA_KEYS)}."
        )
    if "model_uri" not in extra:
        raise ValueError(
            f"Model {settings.name!r}: `parameters.extra.model_uri` is required: "
            f"{EXTRA_KEYS['model_uri']}."
        )
    warmup = extra.get("warmup", True)
    if not isinstance(warmup, bool):
        raise TypeError(f"Model {settings.name!r}: `extra.warmup` must be true or false.")
    threads = _positive_int(settings, extra, "explain_threads", DEFAULT_EXPLAIN_THREADS)
    max_samples = _positive_int(settings, extra, "max_request_samples", DEFAULT_MAX_SAMPLES)
    max_values = _positive_int(settings, extra, "max_request_values", DEFAULT_MAX_VALUES)
    anywhere = extra.get("allow_paths_outside_folder", False)
    if not isinstance(anywhere, bool):
        raise TypeError(
            f"Model {settings.name!r}: `extra.allow_paths_outside_folder` must be true or false. "
            f"Received: {anywhere!r}."
        )
    uri = _explainer_uri(settings, "init_parameters" in extra)
    return RuntimeSettings(
        model_uri=_existing(settings, extra["model_uri"], "extra.model_uri", anywhere),
        explainer_uri=_existing(settings, uri, "uri", anywhere) if uri else None,
        init_parameters=_check_init_parameters(settings, extra.get("init_parameters", {})),
        warmup=warmup,
        explain_threads=threads,
        max_request_samples=max_samples,
        max_request_values=max_values,
    )
