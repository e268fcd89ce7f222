"""The package keeps its layers: no private module flat at the top, no import upward or in a
circle, and the request checks (and what a model declares) import no TensorFlow."""

import ast
import subprocess
import sys
from pathlib import Path

import ig_plugin

PACKAGE = Path(ig_plugin.__file__).parent

#: Every module's layer, bottom first: a module may import its own layer and those below it.
LAYERS = {
    "ig_plugin._version": 0,
    "ig_plugin._model": 1,
    "ig_plugin._request": 2,
    "ig_plugin._regions": 2,  # XRAI's segments and ranking: numpy and scikit-image
    "ig_plugin._engine": 3,
    "ig_plugin._integral": 4,
    "ig_plugin._explainer": 5,
    "ig_plugin.integrated_gradients": 6,
    "ig_plugin.expected_gradients": 6,
    "ig_plugin.noise_tunnel": 7,
    "ig_plugin.xrai": 7,
    "ig_plugin.visualization": 7,
    "ig_plugin._batch": 8,
    "ig_plugin.text": 8,
    "ig_plugin.serving": 8,
    "ig_plugin.metrics": 8,  # calls the explainers (NoiseTunnel included)
    "ig_plugin.distributed": 9,
    "ig_plugin.cli": 10,
    "ig_plugin.__main__": 11,
    "ig_plugin": 11,  # the package's __init__: public names, imported lazily
}


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module):
    owner = max(
        (name for name in LAYERS if module == name or module.startswith(name + ".")), key=len
    )
    return LAYERS[owner]


def _imports(path):
    """Every ig_plugin module ``path`` imports, at any depth of its code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ig_plugin"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("ig_plugin")]
    return found


def test_no_private_module_sits_flat_at_the_top():
    flat = sorted(
        path.name
        for path in PACKAGE.glob("_*.py")
        if path.name not in ("__init__.py", "__main__.py", "_version.py")
    )
    assert flat == []


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if module == "ig_plugin":
            continue  # names every public module, on first use
        for imported in _imports(path):
            if _layer(imported) > _layer(module):
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_the_layer_table_names_every_module():
    for path in PACKAGE.rglob("*.py"):
        _layer(_module_name(path))  # raises ValueError (max of nothing) for an unknown module


def test_the_request_checks_and_the_model_description_import_no_tensorflow():
    modules = [
        _module_name(path)
        for folder in ("_model", "_request")
        for path in sorted((PACKAGE / folder).glob("*.py"))
        if path.stem != "loading"  # imports TensorFlow inside load_model only
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "assert 'tensorflow' not in sys.modules, 'imported tensorflow'\n"
        "assert 'keras' not in sys.modules, 'imported keras'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
