"""Loading a saved Keras model, for the command line, Ray's workers and the server."""

from __future__ import annotations

import os
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
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a file it cannot read
        raise ValueError(f"{path!r} could not be loaded as a Keras model: {error}") from None
