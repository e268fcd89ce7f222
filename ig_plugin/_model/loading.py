"""Loading a saved Keras model, for the command line, Ray's workers and the server."""

from __future__ import annotations

import os
import zipfile
from typing import Any


def load_model(model_uri: str | os.PathLike) -> Any:
    """Load a saved Keras model, uncompiled (explaining needs no optimizer or loss), with the
    Keras that ``tf.keras`` is in this process.

    Keras 3 reads ``.keras`` and ``.h5`` files; tf_keras and Keras 2 read SavedModel folders too.

    Raises
    ------
    FileNotFoundError
        Nothing is at ``model_uri``.
    ValueError
        Keras cannot read it; the message holds Keras's reason.
    """
    import tensorflow as tf  # here: importing this module must not import TensorFlow

    path = os.fspath(model_uri)
    if not os.path.exists(path):
        raise FileNotFoundError(f"The model file {path!r} does not exist.")
    # Keras 3 answers "File not found" for a .keras file that is not a zip archive (a corrupt or
    # truncated one): say what it is instead.
    if path.endswith(".keras") and os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} could not be loaded as a Keras model: a .keras file is a zip archive, and "
            f"this one ({os.path.getsize(path)} bytes) is not: it is corrupt, truncated, or a "
            "file of another format."
        )
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a file it cannot read
        raise ValueError(f"{path!r} could not be loaded as a Keras model: {error}") from None
