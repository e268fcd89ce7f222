"""One ``explain`` call's arguments, checked and normalised before any TensorFlow work.

Numpy only: nothing here imports TensorFlow, so a bad request fails fast with a message that names
the argument, and a server can refuse it before queueing it. May import :mod:`ig_plugin._model`.
"""
