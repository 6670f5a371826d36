"""The demo: options, files written, and a correct fit with the default seed."""

import argparse
import re

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import make_blobs

from gaussmix import _demo

FILES = ["1-data.png", "2-initial.png", "3-fitted.png", "4-progress.png",
         "5-log-likelihood.png", "6-em.gif"]


def parse(*argv):
    parser = argparse.ArgumentParser(prog="gaussmix demo")
    _demo.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults():
    args = parse()
    assert (args.seed, args.n_samples, args.components, args.steps, args.out) == (
        _demo.DEFAULT_SEED, 100, 3, 100, "gaussmix-demo")


@pytest.mark.parametrize("argv", [["--steps", "-1"], ["--components", "0"],
                                  ["--n-samples", "many"], ["--seed", "-3"]])
def test_bad_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    assert "expected" in capsys.readouterr().err


def test_default_run_finds_the_three_clusters(tmp_path, capsys):
    out = tmp_path / "pictures"
    assert _demo.run(parse("--out", str(out))) == 0
    text = capsys.readouterr().out
    for name in FILES:
        data = (out / name).read_bytes()
        assert len(data) > 5000, name
        assert data[:4] in (b"\x89PNG", b"GIF8"), name
    with Image.open(out / "1-data.png") as image:
        assert min(image.size) >= 400
    # The printed fitted means are the true centres of make_blobs' clusters.
    _, _, centers = make_blobs(n_samples=100, centers=3, random_state=_demo.DEFAULT_SEED,
                               return_centers=True)
    means = np.array([[float(v) for v in m.split(",")]
                      for m in re.findall(r"Gauss\(mu=\[([^\]]*)\]", text)])
    assert means.shape == (3, 2)
    distance = np.linalg.norm(means[:, None] - centers[None], axis=2)
    assert sorted(distance.argmin(axis=1)) == [0, 1, 2]  # one mean per centre
    assert distance.min(axis=1).max() < 0.5
    assert "Mixture([Gauss(" in text
    log_likelihood = float(re.search(r"log-likelihood: (-?[\d.]+)", text).group(1))
    assert -500 < log_likelihood < -300
    assert "adjusted Rand index 1.00" in text
    assert "local optimum" not in text


def test_small_run_and_frames(tmp_path, capsys):
    out = tmp_path / "small"
    assert _demo.run(parse("--seed", "1", "--n-samples", "40", "--components", "2",
                           "--steps", "3", "--out", str(out))) == 0
    assert sorted(p.name for p in out.iterdir()) == FILES
    assert "3 EM steps" in capsys.readouterr().out
    with Image.open(out / "6-em.gif") as gif:
        assert 2 <= gif.n_frames <= 4  # steps 0..3; repeated frames are merged


def test_progress_steps_are_dense_early():
    assert _demo._progress_steps(3, 3) == [0, 1, 2, 3]
    steps = _demo._progress_steps(100, 7)
    assert steps[:5] == [0, 1, 2, 3, 4] and steps[-1] == 100 and len(steps) == 8
    steps = _demo._progress_steps(100, 100)
    assert steps[0] == 0 and steps[-1] == 100 and len(steps) == 8
    assert steps == sorted(set(steps))


def test_too_few_samples(tmp_path, capsys):
    assert _demo.run(parse("--n-samples", "2", "--components", "3",
                           "--out", str(tmp_path / "x"))) == 1
    assert "--n-samples" in capsys.readouterr().err


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _demo.run(parse("--steps", "1", "--out", str(blocker / "sub"))) == 1
    assert "cannot create" in capsys.readouterr().err
