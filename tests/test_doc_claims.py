"""What the README and the docs say, checked as a user would meet it."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.metrics import adjusted_rand_score

from gaussmix import GaussianMixture, plot
from gaussmix.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _readme_block(marker):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(b for b in blocks if marker in b)


def test_readme_object_model_snippet_is_self_contained_and_finds_the_clusters():
    namespace = {}  # nothing from earlier snippets: no np, no X
    try:
        exec(_readme_block("from gaussmix import Gauss, Mixture"), namespace)
    finally:
        plt.close("all")
    mixture, X, y = namespace["mixture"], namespace["X"], namespace["y"]
    found = mixture.to_estimator().predict(X)
    assert adjusted_rand_score(y, found) == 1.0  # the restarts' best is the truth


def test_readme_single_start_can_miss_which_is_why_it_restarts():
    namespace = {}
    exec(_readme_block("from gaussmix import Gauss, Mixture")
         .split("# EM climbs")[0].replace("from gaussmix import plot", ""), namespace)
    starts = [namespace["random_start"]().fit(namespace["X"]) for _ in range(10)]
    final = [m.log_likelihoods_[-1] for m in starts]
    assert max(final) - min(final) > 1.0  # different optima from different starts


def _fit_file(tmp_path, seed_args):
    data = tmp_path / "iris.csv"
    load_iris(as_frame=True).data.to_csv(data, index=False)
    model = tmp_path / f"m{len(seed_args)}.gmm"
    assert main(["fit", str(data), "-k", "2", *seed_args, "--out", str(model)]) == 0
    return model


def _sample(model, capsys, *extra):
    capsys.readouterr()
    assert main(["sample", str(model), "-n", "5", *extra]) == 0
    return capsys.readouterr().out


def test_cli_sample_repeats_only_with_a_seed(tmp_path, capsys):
    # docs/cli.md: a model fitted with --seed repeats its rows, one fitted without does not.
    seeded = _fit_file(tmp_path, ["--seed", "0"])
    assert _sample(seeded, capsys) == _sample(seeded, capsys)
    unseeded = _fit_file(tmp_path, [])
    assert _sample(unseeded, capsys) != _sample(unseeded, capsys)
    assert _sample(unseeded, capsys, "--seed", "3") == _sample(unseeded, capsys,
                                                               "--seed", "3")


def test_plot_mixture_labels_axes_with_the_feature_names():
    frame = load_iris(as_frame=True).data
    gm = GaussianMixture(2, random_state=0).fit(frame)
    try:
        ax = plot.mixture(gm, frame, dims=(2, 3))
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("petal length (cm)",
                                                       "petal width (cm)")
        unnamed = GaussianMixture(2, random_state=0).fit(frame.to_numpy())
        ax = plot.mixture(unnamed, frame)  # the model has none: X's columns
        assert ax.get_xlabel() == "sepal length (cm)"
        ax = plot.mixture(unnamed, frame.to_numpy())
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("x0", "x1")
        ax = plot.mixture(gm, frame, feature_names=list("abcd"))
        assert ax.get_xlabel() == "a"
    finally:
        plt.close("all")


def test_docs_link_nothing_outside_the_repository():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)[^)]*\)|`(\.\./[^`]+)`",
                                 path.read_text()):
            link = next(t for t in target if t)
            if link.startswith("http"):
                continue
            resolved = (path.parent / link).resolve()
            assert resolved.is_relative_to(ROOT), f"{path.name} links outside: {link}"
            assert resolved.exists(), f"{path.name} links to a missing file: {link}"
