"""What every alibi explainer of a Keras model shares: the model and its layer, the compiled
passes, ``target_fn``, pickling, saving and loading (``base``); and what an explainer that wraps
another one shares (``wrapping``).

May import every private package below it: :mod:`ig_plugin._integral`, :mod:`ig_plugin._engine`,
:mod:`ig_plugin._request`, :mod:`ig_plugin._model`.
"""
