"""Collection for the whole repository: the doctests of ig_plugin.serving need MLServer."""

import importlib.util

# `pip install ".[serve]"` brings MLServer; the stacks without it (tf_keras, TensorFlow 2.14)
# skip the serving package's modules, and tests/test_serving*.py skip themselves.
collect_ignore_glob = [] if importlib.util.find_spec("mlserver") else ["ig_plugin/serving/*"]
