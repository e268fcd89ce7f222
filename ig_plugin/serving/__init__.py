"""Serving explanations with MLServer: ``pip install "ig_plugin[serve]"``.

``IntegratedGradientsRuntime`` is an MLServer runtime (an ``mlserver.MLModel``): name it as the
``implementation`` in a model-settings.json and MLServer answers V2 inference requests with
Integrated Gradients attributions. ``LocalServer`` runs ``mlserver start`` on 127.0.0.1 for
examples and tests. See the "Deploying" page of the documentation.
"""

from ig_plugin.serving._local import LocalServer
from ig_plugin.serving._runtime import IntegratedGradientsRuntime

__all__ = ["IntegratedGradientsRuntime", "LocalServer"]
