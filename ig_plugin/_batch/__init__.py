"""Whole datasets: the command line's files and rows, the worker that explains batches, and Ray.

Above the explainers: it builds and loads them. Imported by :mod:`ig_plugin.cli` and
:mod:`ig_plugin.distributed`.
"""
