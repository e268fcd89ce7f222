"""Sphinx configuration for the ig_plugin docs: `make docs` builds them with warnings as errors."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ig_plugin import __version__  # noqa: E402

project = "ig_plugin"
author = "the ig_plugin developers"
copyright = f"2026, {author}"  # noqa: A001 (Sphinx's name)
release = version = __version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"ig_plugin {version}"

# numpydoc-style docstrings; types come from the signatures' hints.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}

# Every reference must resolve. The machine has no network, so no intersphinx: names from other
# libraries (numpy, TensorFlow, alibi, matplotlib, the standard library) are left unlinked.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(np|numpy|tf|tensorflow|keras|alibi|matplotlib|plt|typing|collections|os)\..*"),
    (r"py:.*", r"ray\..*"),
    (r"py:.*", r"mlserver\..*"),
    (r"py:.*", r"(Explanation|Figure|Axes|ArrayOrList|OutputPick|Any|Callable|Sequence)"),
    (r"py:.*", r"(optional|array-like|ndarray|callable|str|int|float|bool|dict|list|tuple)"),
    # The explainers' shared ``load`` returns an instance of the class it is called on.
    (r"py:class", r"ig_plugin\._explainer\.(base|wrapping)\.Self"),
    # Private base classes named in public signatures (NoiseTunnel wraps any ModelExplainer;
    # explain_dataset's private worker class and the command line's rows to check).
    (r"py:class", r"(ig_plugin\._explainer\.base\.)?ModelExplainer"),
    (r"py:class", r"(ig_plugin\._batch\.worker\.)?BatchExplainer"),
    (r"py:class", r"(ig_plugin\._batch\.model_check\.)?RowsToCheck"),
]
