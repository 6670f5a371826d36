"""The first ``select`` after installing compiles Numba kernels: it says so, once, first.

Numba is part of the test extra. Nothing here compiles in a cold cache (that takes
minutes): the cold case is a fresh, empty NUMBA_CACHE_DIR in a subprocess, asked whether
it would compile; the warm case follows a compiled select in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys

from sklearn.datasets import load_iris

import gaussmix
from gaussmix._mclust import em as _em_module, fast_em, first_run, hc as _hc_module, hc_fast

PROBE = """
from gaussmix._mclust import fast_em, first_run, hc_fast
print(first_run.will_compile(fast_em._em), first_run.will_compile(hc_fast._agglomerate))
for _ in range(3):
    first_run.announce(fast_em._em)
    first_run.announce(hc_fast._agglomerate)
"""


def _probe(env):
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip(), result.stderr


def test_a_cold_cache_is_announced_once(tmp_path):
    out, err = _probe({**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)})
    assert out == "True True"
    assert err == first_run.NOTICE + "\n"  # once, for both kernels and all calls


def _select_compiled():
    return gaussmix.select(load_iris().data, G=[2], models=["EII"], backend="numba",
                           n_jobs=1)


def test_a_warm_cache_says_nothing(capsys):
    _select_compiled()  # compiles, or loads from the cache
    assert not first_run.will_compile(fast_em._em)
    assert not first_run.will_compile(hc_fast._agglomerate)
    capsys.readouterr()
    first_run.announce(fast_em._em)
    assert capsys.readouterr().err == ""
    # A new process finds the code in the on-disk cache: nothing to say.
    assert _probe(dict(os.environ)) == ("False False", "")


def test_select_announces_before_each_compiled_kernel(monkeypatch):
    called = []
    monkeypatch.setattr(_em_module, "announce", called.append)
    monkeypatch.setattr(_hc_module, "announce", called.append)
    _select_compiled()
    assert hc_fast._agglomerate in called and fast_em._em in called
    assert called.index(hc_fast._agglomerate) < called.index(fast_em._em)
