"""What a Keras model is and declares, and which of its layers is explained.

The bottom of the package: no TensorFlow import (``loading`` imports it only when it loads), and
no import of another part of ig_plugin.
"""
