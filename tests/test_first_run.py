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
from gaussmix import _first_run as first_run
from gaussmix._mclust import em as _em_module, fast_em, hc as _hc_module, hc_fast

PROBE = """
from gaussmix import _first_run as first_run
from gaussmix._mclust import fast_em, hc_fast
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


def test_a_cold_cache_runs_numpy_and_compiles_in_background(monkeypatch, capsys):
    spawned = []
    monkeypatch.setenv("GAUSSMIX_BACKGROUND_COMPILE", "1")
    monkeypatch.setattr(first_run, "_started", False)
    monkeypatch.setattr(first_run, "cold", lambda *dispatchers: True)
    monkeypatch.setattr(first_run, "_claim", lambda path: True)
    monkeypatch.setattr(first_run, "_spawn", spawned.append)

    def compiled(*args, **kwargs):
        raise AssertionError("the compiled EM ran on a cold cache")

    monkeypatch.setattr(fast_em, "fast_mclust_em", compiled)
    X = load_iris().data
    cold = gaussmix.select(X, G=[2, 3], models=["EII", "VVV"])
    numpy = gaussmix.select(X, G=[2, 3], models=["EII", "VVV"], backend="numpy")
    assert cold.bic.equals(numpy.bic)  # this run: the NumPy path
    assert len(spawned) == 1 and spawned[0][1:3] == ["-m", "gaussmix._compile_cache"]
    assert capsys.readouterr().err.count(first_run.BACKGROUND_NOTICE) == 1  # said once
    monkeypatch.setenv("GAUSSMIX_BACKGROUND_COMPILE", "0")  # off: compile in the call
    monkeypatch.setattr(first_run, "_started", False)
    assert _em_module.resolve_backend("auto") == "numba"


def test_one_compiling_process_at_a_time(tmp_path):
    lock = str(tmp_path / "x.compiling")
    assert first_run._claim(lock) and not first_run._claim(lock)
    old = os.path.getmtime(lock) - first_run._STALE_SECONDS - 1
    os.utime(lock, (old, old))  # left behind by a process that died
    assert first_run._claim(lock)


def test_the_compiling_process_fills_the_cache_and_unlocks(tmp_path):
    _select_compiled()  # the cache is warm: the process only loads (and checks) it
    lock = tmp_path / "x.compiling"
    lock.write_text("")
    result = subprocess.run([sys.executable, "-m", "gaussmix._compile_cache", str(lock)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert not lock.exists()
    assert not first_run.cold(fast_em._em, hc_fast._agglomerate)
