"""Sphinx configuration for the ig_plugin docs."""

project = "ig_plugin"
author = "ig_plugin developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.doctest"]
napoleon_numpy_docstring = True
exclude_patterns = ["_build"]
html_theme = "alabaster"
