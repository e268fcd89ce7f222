"""The compiled engine: the only place the model runs.

TensorFlow: compiled forward and gradient passes of one model (:mod:`.compiled`), the gradient
loop every path method runs on (:mod:`.loop`, with the plans of :mod:`.plans`), the choice of the
explained scalar (:mod:`.select`), how samples are cut into spans (:mod:`.spans`), and the layer
hooks. May import :mod:`ig_plugin._model` and
:mod:`ig_plugin._request` (the normalised arguments it runs on).
"""
