"""The host side of an integral: where the path points lie and how the passes are driven.

Quadrature rules, the driver that runs any plan over the samples span by span with one progress
bar, auto steps, Expected Gradients' draws, NoiseTunnel's moments, and completeness. Mostly
numpy; it calls the engine. May import :mod:`ig_plugin._engine`, :mod:`ig_plugin._request` and
:mod:`ig_plugin._model`.
"""
