"""The public surface: ``gaussmix.__all__``, and docs that use nothing else (and run)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import gaussmix

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _doc_id(path):
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("name", [n for n in gaussmix.__all__ if n != "__version__"])
def test_every_public_name_imports_and_has_a_docstring(name):
    namespace = {}
    exec(f"from gaussmix import {name}", namespace)
    obj = namespace[name]
    assert obj is getattr(gaussmix, name)
    assert (obj.__doc__ or "").strip(), f"gaussmix.{name} has no docstring"


def test_all_lists_each_name_once_and_version_is_a_string():
    assert len(gaussmix.__all__) == len(set(gaussmix.__all__))
    assert isinstance(gaussmix.__version__, str)


def test_registry_names_read_as_a_set():
    assert gaussmix.register_model.__name__ == "register"
    assert gaussmix.unregister_model.__name__ == "unregister"
    assert isinstance(gaussmix.get_model("full"), gaussmix.CovarianceModel)
    for kind in (gaussmix.DegenerateCovarianceError, gaussmix.VanishingComponentError,
                 gaussmix.NonFiniteLikelihoodError):
        assert issubclass(kind, gaussmix.FitError)
    assert issubclass(gaussmix.FitError, ValueError)


@pytest.mark.parametrize("path", DOCS, ids=_doc_id)
def test_docs_never_point_into_private_modules(path):
    text = path.read_text(encoding="utf-8")
    found = sorted(set(re.findall(r"gaussmix\._\w+", text)))
    assert not found, f"{_doc_id(path)} mentions private modules: {found}"


@pytest.mark.parametrize("path", DOCS, ids=_doc_id)
def test_every_gaussmix_name_in_the_docs_is_public(path):
    text = path.read_text(encoding="utf-8")
    names = set(re.findall(r"\bgaussmix\.([A-Za-z_]\w*)", text))
    for imported in re.findall(r"^\s*from gaussmix import ([\w, ]+)$", text, re.M):
        names.update(n.strip() for n in imported.split(","))
    missing = sorted(n for n in names if n not in gaussmix.__all__)
    assert not missing, f"{_doc_id(path)} uses names gaussmix does not export: {missing}"


# ------------------------------------------------------------------------------------
# The documented examples run: every ```python block of a file, in order, in one
# namespace that already holds the data the snippets leave to the reader.

def _reader_data():
    from sklearn.datasets import load_iris

    iris = load_iris()
    X = iris.data
    return {
        "np": np,
        "X": X,
        "X_new": X[:5],
        "labels": iris.target,
        "G": 3,
        "n": X.shape[0],
        "d": X.shape[1],
        "initial_noise_rows": np.arange(0, X.shape[0], 15),
    }


@pytest.mark.parametrize("path", [p for p in DOCS if PYTHON_BLOCK.search(p.read_text())],
                         ids=_doc_id)
def test_documented_examples_run(path, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = path.read_text(encoding="utf-8")
    if "import dask" in text:
        pytest.importorskip("distributed")  # the dask extra
    if "import torch" in text:
        pytest.importorskip("torch")  # the reader's own array library, never a dependency
    monkeypatch.chdir(tmp_path)
    namespace = _reader_data()
    registered = set(gaussmix.model_names())
    try:
        for i, block in enumerate(PYTHON_BLOCK.findall(path.read_text(encoding="utf-8"))):
            code = compile(block, f"{_doc_id(path)}[python block {i}]", "exec")
            exec(code, namespace)
    finally:
        plt.close("all")
        for name in set(gaussmix.model_names()) - registered:
            gaussmix.unregister_model(name)
