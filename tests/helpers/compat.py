"""The Keras under test, whichever stack this run is on.

``keras`` is Keras 3 on TensorFlow 2.16+, Keras 2.14 on TensorFlow 2.14, and tf_keras when
``TF_USE_LEGACY_KERAS=1`` is set (as ``tf.keras`` then is): the tests build their models from it
so that one suite proves all three stacks. Model code uses TensorFlow ops, not ``keras.ops``,
which Keras 2 lacks.
"""

import os

if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    import tf_keras as keras
else:
    import keras

#: 3 for Keras 3, 2 for tf_keras and Keras 2.
KERAS_MAJOR = int(keras.__version__.split(".")[0])

__all__ = ["KERAS_MAJOR", "keras"]
