"""Startup cost: ``import gaussmix`` and ``gaussmix --help`` import none of the heavy
libraries (scikit-learn, SciPy, pandas, Numba, ...) until a name or a command needs one.

Checked by the modules a fresh interpreter holds afterwards, not by wall time (which
depends on the machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

import gaussmix

HEAVY = ("numpy", "scipy", "sklearn", "pandas", "pyarrow", "numba", "matplotlib",
         "dask", "tqdm")


def _heavy_modules_after(code: str) -> list[str]:
    """The heavy top-level packages a fresh interpreter has imported after ``code``."""
    probe = (f"import sys\n{code}\nimport json\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & "
             f"set({HEAVY!r}))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_gaussmix_imports_no_heavy_library():
    assert _heavy_modules_after("import gaussmix") == []


@pytest.mark.parametrize("argv", [["--help"], ["fit", "--help"], ["predict", "--help"],
                                  ["sample", "--help"], ["select", "--help"],
                                  ["demo", "--help"], ["--version"]])
def test_command_help_imports_no_heavy_library(argv):
    code = (f"from gaussmix.cli import main\nimport contextlib, io\n"
            f"with contextlib.redirect_stdout(io.StringIO()): assert main({argv!r}) == 0")
    assert _heavy_modules_after(code) == []


def test_a_name_imports_what_it_needs_on_first_use():
    # The lazy names still resolve to the objects their modules define.
    assert "sklearn" in _heavy_modules_after("from gaussmix import GaussianMixture")
    assert _heavy_modules_after("from gaussmix import FitError") == []


def test_every_public_name_is_listed_by_dir_and_star_import():
    assert set(gaussmix.__all__) <= set(dir(gaussmix))
    namespace = {}
    exec("from gaussmix import *", namespace)
    assert set(gaussmix.__all__) <= set(namespace)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        gaussmix.not_a_name  # noqa: B018


def test_the_names_the_command_lists_are_the_registered_ones():
    from gaussmix import _names
    from gaussmix._models import mclust

    assert list(_names.BUILTIN) == gaussmix.model_names()
    assert _names.MCLUST_MODELS == mclust.MCLUST_MODELS
    assert _names.UNIVARIATE_MODELS == mclust.UNIVARIATE_MODELS


def test_a_registered_model_shows_in_the_command_choices():
    from gaussmix.cli import _covariance_choices

    gaussmix.register_model(replace(gaussmix.get_model("VVV"), name="MYVVV"))
    try:
        assert "MYVVV" in _covariance_choices()
    finally:
        gaussmix.unregister_model("MYVVV")
    assert "MYVVV" not in _covariance_choices()
