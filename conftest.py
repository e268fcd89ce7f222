"""Collection for the whole repository: the doctests of ig_plugin.serving need MLServer, and
the compiled loops of n_steps="auto" need numba."""

import importlib.util

# `pip install ".[serve]"` brings MLServer; the stacks without it (tf_keras, TensorFlow 2.14)
# skip the serving package's modules, and tests/test_serving*.py skip themselves.
collect_ignore_glob = [] if importlib.util.find_spec("mlserver") else ["ig_plugin/serving/*"]

# `pip install ".[fast]"` brings numba; without it the module of the compiled loops cannot be
# imported (ig_plugin never imports it then), and tests/explainers/test_fused_refinement.py
# skips itself.
if importlib.util.find_spec("numba") is None:
    collect_ignore_glob.append("ig_plugin/_integral/_fused_kernels.py")
