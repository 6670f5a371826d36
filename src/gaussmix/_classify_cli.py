"""``gaussmix classify TRAIN --label COL``: mixture discriminant analysis on files.

Fits :class:`gaussmix.MixtureDiscriminant` (mclust's MclustDA or EDDA) to the labelled
rows of TRAIN (read as ``fit`` reads DATA: CSV, TSV, Parquet or ``.npy``), prints
mclust's summary with the training confusion matrix, optionally the cross-validated
error and Brier score, and with ``--predict NEW`` writes each row's predicted class and
class probabilities.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``gaussmix classify``'s arguments to ``parser``."""
    from ._select_cli import _G_type
    from .cli import _add_data_arguments

    parser.add_argument("train", metavar="TRAIN",
                        help="labelled rows: .csv, .tsv (optionally compressed), "
                             ".parquet or .npy, read as fit reads DATA")
    parser.add_argument("--label", required=True, metavar="COLUMN",
                        help="the column of TRAIN that holds the classes: a name, or a "
                             "0-based index for files without column names")
    # How TRAIN and NEW are read: fit's options.
    _add_data_arguments(parser, data=False, default_columns="every column but the label "
                        "(TRAIN), the training features (NEW)")
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
                        help="write the predictions here (.csv, .tsv or .parquet, "
                             "atomically); default stdout")
    return parser


def _new_rows(path, table, label, columns, how, train):
    """NEW's rows of the training features: by name when TRAIN has names; else the
    same positions (``--columns``), or TRAIN's layout with or without its label column."""
    from ._errors import DataError
    from ._files.sources import read_data

    names = table.names
    if names is not None:  # the reader names the features NEW lacks, as for predict
        return read_data(path, default_columns=names, **how).frame()
    if columns is not None:
        return read_data(path, columns, **how).values
    n_features = table.values.shape[1]
    try:
        new = read_data(path, exclude=[label], **how).values
        if new.shape[1] == n_features:
            return new
    except DataError:
        pass
    new = read_data(path, **how).values
    if new.shape[1] != n_features:
        raise ValueError(f"{path}: has {new.shape[1]} column(s); {train} has "
                         f"{n_features} feature column(s) and the label.")
    return new


def run(args) -> int:
    """Run ``gaussmix classify`` with parsed ``args``; returns the exit status."""
    import numpy as np
    import pandas as pd

    from ._discriminant import MixtureDiscriminant
    from ._errors import FitError
    from ._files.data import parse_columns
    from ._files.sources import read_labelled
    from ._files.table_writer import output_format, write_table
    from .cli import CommandError, _check_output, _error

    try:
        # The output is checked before any work, and written as fit's tables are:
        # atomically, never over an input.
        _check_output(args.output, [p for p in (args.train, args.predict) if p])
        if args.output and output_format(args.output) == "npy":
            raise ValueError(f"cannot write {args.output}: the predictions hold class "
                             "names, which .npy does not; use .csv, .tsv or .parquet.")
        # One reader for every command: TRAIN and NEW as fit reads DATA.
        how = dict(header=args.header, format=args.format, delimiter=args.delimiter)
        columns = parse_columns(args.columns)
        table, y = read_labelled(args.train, args.label, columns, **how)
        X = table.frame()
        new = None
        if args.predict:
            new = _new_rows(args.predict, table, args.label, columns, how, args.train)
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
            proba = clf.predict_proba(new)
            out = pd.DataFrame({"predicted": clf.classes_[np.argmax(proba, axis=1)]})
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
