"""``gaussmix classify TRAIN --label COL``: mixture discriminant analysis on files.

Fits :class:`gaussmix.MixtureDiscriminant` (mclust's MclustDA or EDDA) to the labelled
rows of TRAIN (CSV, TSV or Parquet with a header), prints mclust's summary with the
training confusion matrix, optionally the cross-validated error and Brier score, and
with ``--predict NEW`` writes each row's predicted class and class probabilities.
"""

from __future__ import annotations

import argparse
import os

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``gaussmix classify``'s arguments to ``parser``."""
    from ._select_cli import _G_type

    parser.add_argument("train", metavar="TRAIN",
                        help="labelled rows: .csv, .tsv or .parquet with a header")
    parser.add_argument("--label", required=True, metavar="COLUMN",
                        help="the column of TRAIN that holds the classes")
    parser.add_argument("--columns", default=None,
                        help="comma-separated feature columns (default: every numeric "
                             "column but the label)")
    parser.add_argument("--type", dest="model_type", choices=["MclustDA", "EDDA"],
                        default="MclustDA", help="a mixture per class chosen by BIC "
                        "(MclustDA, default) or one Gaussian per class (EDDA)")
    parser.add_argument("-G", "--G", dest="G", type=_G_type, default=None,
                        help="components tried per class (MclustDA), default 1:5")
    parser.add_argument("-m", "--models", default=None,
                        help="comma-separated mclust models (default: all 14)")
    parser.add_argument("--priors", default=None,
                        help="'adjusted' (re-estimated on NEW, mclust's classPriorProbs)"
                             " or comma-separated class priors; default the training "
                             "proportions")
    parser.add_argument("--cv", type=int, default=None, metavar="K",
                        help="also print the K-fold cross-validated error and Brier "
                             "score (mclust's cvMclustDA)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the CV folds")
    parser.add_argument("--predict", metavar="NEW", default=None,
                        help="rows to classify (same feature columns)")
    parser.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="write the predictions here (.csv, .tsv or .parquet, atomically); "
                             "default stdout")
    return parser


def _read(path):
    import pandas as pd

    ext = os.path.splitext(path)[1].lower()
    if ext == ".parquet":
        return pd.read_parquet(path)
    if ext not in (".csv", ".tsv", ".txt"):
        raise ValueError(f"{path}: classify reads .csv, .tsv or .parquet files with a "
                         "header, got {ext or 'no extension'}.")
    return pd.read_csv(path, sep="\t" if ext == ".tsv" else ",")


def _features(frame, label, columns, path):
    from pandas.api.types import is_numeric_dtype

    if columns:
        names = [c.strip() for c in columns.split(",")]
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: no column(s) {', '.join(missing)}; it has "
                             f"{', '.join(map(str, frame.columns))}.")
    else:
        names = [c for c in frame.columns if c != label and is_numeric_dtype(frame[c])]
    if not names:
        raise ValueError(f"{path}: no numeric feature column besides {label!r}.")
    return frame[names]


def run(args) -> int:
    """Run ``gaussmix classify`` with parsed ``args``; returns the exit status."""
    import numpy as np

    from ._discriminant import MixtureDiscriminant
    from ._errors import FitError
    from ._files.table_writer import output_format, write_table
    from .cli import CommandError, _check_output, _error

    try:
        # The output is checked before any work, and written as fit's tables are:
        # atomically, never over an input.
        _check_output(args.output, [p for p in (args.train, args.predict) if p])
        if args.output and output_format(args.output) == "npy":
            raise ValueError(f"cannot write {args.output}: the predictions hold class "
                             "names, which .npy does not; use .csv, .tsv or .parquet.")
        train = _read(args.train)
        if args.label not in train.columns:
            raise ValueError(f"{args.train}: no label column {args.label!r}; it has "
                             f"{', '.join(map(str, train.columns))}. Pass --label NAME.")
        X = _features(train, args.label, args.columns, args.train)
        y = train[args.label].to_numpy()
        new = _read(args.predict) if args.predict else None
        priors = args.priors
        if priors is not None and priors != "adjusted":
            priors = [float(v) for v in priors.split(",")]
        models = [m.strip() for m in args.models.split(",")] if args.models else None
        clf = MixtureDiscriminant(args.model_type, G=args.G, models=models,
                                  priors=priors).fit(X, y)
        print(clf.summary(X, y))
        if args.cv:
            cv = clf.cross_validate(X, y, n_folds=args.cv, random_state=args.seed)
            print(f"\n{args.cv}-fold cross-validation:")
            print(f"Classification error = {cv.error:.4f} (se {cv.se_error:.4f})")
            print(f"Brier score          = {cv.brier:.4f} (se {cv.se_brier:.4f})")
        if new is not None:
            Xn = new[list(X.columns)] if all(c in new.columns for c in X.columns) \
                else None
            if Xn is None:
                raise ValueError(f"{args.predict}: it lacks feature column(s) "
                                 f"{', '.join(c for c in X.columns if c not in new.columns)}.")
            proba = clf.predict_proba(Xn)
            out = new.copy()
            out["predicted"] = clf.classes_[np.argmax(proba, axis=1)]
            for k, c in enumerate(clf.classes_):
                out[f"p_{c}"] = proba[:, k]
            if not args.output:
                print()
            write_table(args.output, [out], len(out))
            if args.output:
                print(f"\npredictions of {len(out)} rows written to {args.output}")
    except (ValueError, FitError, CommandError) as exc:
        _error(exc)
        return 1
    except OSError as exc:
        _error(f"{exc.filename or ''}: {exc.strerror or exc}")
        return 1
    return 0
