"""The ``gaussmix`` command: fit, predict, score, sample, plot, select and demo.

Each subcommand is a thin shell: read a data file (:mod:`gaussmix._files.data`), or
stream it when it is large (:mod:`gaussmix._cli_stream`, :mod:`gaussmix._files.sources`),
load or save a model file (:mod:`gaussmix._files.model_files`), call the estimator, write
a table (:mod:`gaussmix._files.table_writer`). A user error (a missing or unusable file, a
bad option, an invalid model file) prints one line ``gaussmix: error: ...`` to stderr and
returns a non-zero exit status; input files are only ever read.

``select`` and ``demo`` live in their own modules (``gaussmix._select_cli`` and
``gaussmix._demo``), each exposing ``add_arguments(parser)`` and ``run(args) -> int``;
they are imported only when their subcommand is asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings

PROG = "gaussmix"
# plot's default grid: 30 features would be 900 panels (a 37 MB image, a minute to draw)
PLOTTED_FEATURES = 6

# Subcommands whose parser and code live in other modules: name -> (module, help).
_DELEGATED = {
    "select": ("gaussmix._select_cli", "choose the covariance model and number of "
               "components by BIC (mclust's grid)"),
    "demo": ("gaussmix._demo", "the classic EM demo: blobs, random start, pictures"),
    "classify": ("gaussmix._classify_cli", "fit a mixture per class of a labelled file "
                 "(mclust's MclustDA, EDDA) and classify another"),
}


class CommandError(Exception):
    """A user error detected by the command line itself (bad combination of options)."""


class _UsageError(Exception):
    """argparse rejected the command line."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the usage and exits; we want one line and a return value.
    def error(self, message):
        raise _UsageError(f"{message} (see '{self.prog} --help')")


# ------------------------------------------------------------------ argument types
# Every numeric option is checked here, while parsing: a bad value is a bad command line
# (exit status 2, one line), never a hang, an overflow or a traceback later on.
MAX_INT = 2**63 - 1  # NumPy's largest index: more rows or iterations cannot be addressed


def _shown(text):
    """An option's value for a message, cut short if long."""
    return repr(text if len(text) <= 30 else text[:20] + "...")


def _whole_number(minimum, maximum=MAX_INT):
    """An argparse type: an integer in [minimum, maximum]."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number, got {_shown(text)}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected a whole number >= {minimum}, got {_shown(text)}")
        if value > maximum:
            limit = "2**63 - 1" if maximum == MAX_INT else str(maximum)
            raise argparse.ArgumentTypeError(
                f"expected a whole number <= {limit}, got {_shown(text)}")
        return value
    return parse


_positive_int = _whole_number(1)
_non_negative_int = _whole_number(0)


def _positive_float(text):
    value = _non_negative_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {_shown(text)}")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {_shown(text)}") from None
    if not value >= 0 or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {_shown(text)}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {_shown(text)}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"expected a whole number in [0, 2**32), got {_shown(text)}")
    return value


def _delimiter(text):
    value = "\t" if text.lower() in ("tab", "\\t") else text
    if len(value) != 1 or value in "\r\n\"":
        raise argparse.ArgumentTypeError(
            f"expected one character or 'tab', got {_shown(text)}")
    return value


# ------------------------------------------------------------------ parser
def _add_data_arguments(parser, exclude=False, data=True,
                        default_columns="all columns (fit, select) or the model's columns"):
    """DATA (unless not ``data``: a command naming its files itself) and the options
    that say how to read it; with ``exclude`` (fit, select), also --exclude, which
    cannot go with --columns."""
    if data:
        parser.add_argument("data", metavar="DATA",
                            help="data file: .csv, .tsv (optionally compressed), "
                                 ".parquet or .npy")
    chosen = parser.add_mutually_exclusive_group() if exclude else parser
    if exclude:
        chosen.add_argument("--exclude", action="append", metavar="COLS",
                            help="columns to leave out, comma-separated (or repeat the "
                                 "option): names, or 0-based indices; the others are used")
    chosen.add_argument("--columns", action="append", metavar="COLS",
                        help="columns to use, comma-separated (or repeat the option): "
                             "names, or 0-based indices for files without column names. "
                             f"Default: {default_columns}")
    parser.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                        help="whether a CSV's first line is a header (default: detect)")
    parser.add_argument("--format", choices=("csv", "tsv", "parquet", "npy"),
                        help="data format (default: from the file extension)")
    parser.add_argument("--delimiter", type=_delimiter, metavar="CHAR",
                        help="a CSV's field separator, one character or 'tab' (default: "
                             "',' for .csv, tab for .tsv)")
    if exclude:  # the commands that fit
        parser.add_argument("--nan-policy", choices=("raise", "marginalize"),
                            default="raise",
                            help="missing values (empty fields, NA, NaN): 'raise' refuses "
                                 "them (default), 'marginalize' fits the observed values "
                                 "(missing at random); the model then also scores rows "
                                 "with missing values")


def _add_streaming_arguments(parser):
    """--in-memory / --streaming and --progress, for the commands that can stream DATA."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--in-memory", dest="mode", action="store_const", const="memory",
                      help="read DATA into memory (default when its values fit the "
                           "memory budget, $GAUSSMIX_MEMORY_BUDGET or a quarter of the "
                           "available memory)")
    mode.add_argument("--streaming", dest="mode", action="store_const", const="stream",
                      help="read DATA in chunks, once per pass, never whole (default when "
                           "it exceeds the memory budget)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars on stderr (default: only when stderr is a "
                             "terminal)")


_TABLE_OUT_HELP = "output file (.csv, .tsv, .parquet, .npy); default stdout"


def _add_model_command(sub, name, handler, *, data=True, **kwargs):
    """A subcommand that reads MODEL (and, with ``data``, DATA and its options)."""
    parser = sub.add_parser(name, **kwargs)
    parser.add_argument("model", metavar="MODEL", help="model file written by 'fit'")
    if data:
        _add_data_arguments(parser)
    parser.set_defaults(_handler=handler)
    return parser


def _covariance_choices():
    from ._names import ALIASES, model_names

    return list(ALIASES) + [m for m in model_names() if m not in ALIASES]


def build_parser(argv=None) -> argparse.ArgumentParser:
    """The argument parser. ``argv`` decides which delegated subcommand is loaded."""
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="Gaussian mixture models by expectation maximization, on CSV, "
                    "Parquet and NumPy files.",
        epilog=f"Run '{PROG} COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    fit = sub.add_parser(
        "fit", help="fit a mixture to DATA, print a summary, write a model file",
        description="Fit a Gaussian mixture by EM and print its weights, means, "
                    "log-likelihood, BIC and convergence; --out writes a model file.",
    )
    _add_data_arguments(fit, exclude=True)
    fit.add_argument("-k", "--components", type=_positive_int, required=True, metavar="K",
                     help="number of mixture components")
    fit.add_argument("--covariance", default="full", choices=_covariance_choices(),
                     metavar="TYPE",
                     help="covariance model, scikit-learn's name or mclust's: "
                          "%(choices)s (default %(default)s)")
    fit.add_argument("--seed", type=_seed, help="random seed of the initialisation")
    fit.add_argument("--out", metavar="MODEL", help="write the fitted model to this file")
    # Tighter than scikit-learn's 1e-3 and 100: EM often crawls along a plateau, and
    # 1e-3 stops there (faithful, EEE, K=3: -1140.55, where mclust reaches -1126.33).
    fit.add_argument("--max-iter", type=_non_negative_int, default=1000,
                     help="maximum EM iterations (default %(default)s)")
    fit.add_argument("--tol", type=_non_negative_float, default=1e-5,
                     help="stop when the mean log-likelihood per row changes by less "
                          "(default %(default)s, tight enough to reach mclust's optimum; "
                          "scikit-learn's 1e-3 can stop on a plateau)")
    fit.add_argument("--n-init", type=_positive_int, default=1,
                     help="number of initialisations, the best is kept (default 1)")
    fit.add_argument("--reg-covar", type=_non_negative_float, default=1e-6,
                     help="added to covariance diagonals (default %(default)s)")
    fit.add_argument("--init", default="kmeans",
                     choices=("kmeans", "k-means++", "random", "random_from_data"),
                     help="initialisation method (default %(default)s)")
    fit.add_argument("--bayesian", action="store_true",
                     help="fit the variational Bayesian mixture (scikit-learn's "
                          "BayesianGaussianMixture): K is an upper bound, the components "
                          "the data do not need get ~0 weight; covariance full, tied, "
                          "diag or spherical (or VVV, EEE, VVI, VII)")
    fit.add_argument("--weight-concentration", type=_positive_float, metavar="C",
                     help="with --bayesian: the weights' prior concentration (default "
                          "1/K); smaller puts the weight on fewer components")
    _add_streaming_arguments(fit)
    fit.add_argument("--dask", metavar="SCHEDULER",
                     default=os.environ.get("GAUSSMIX_DASK_SCHEDULER") or None,
                     help="fit on the Dask cluster of this scheduler address (default "
                          "$GAUSSMIX_DASK_SCHEDULER), reading a Parquet or CSV path with "
                          "dask.dataframe; needs gaussmix[dask]")
    fit.set_defaults(_handler=_cmd_fit)

    predict = _add_model_command(
        sub, "predict", _cmd_predict,
        help="cluster labels (or probabilities) of DATA as CSV",
        description="Write the most probable component of each row of DATA (0-based), "
                    "or with --proba the probability of every component, as CSV.",
    )
    predict.add_argument("--proba", action="store_true",
                         help="write component probabilities instead of labels")
    predict.add_argument("--out", metavar="FILE", help=_TABLE_OUT_HELP)
    _add_streaming_arguments(predict)

    score = _add_model_command(
        sub, "score", _cmd_score,
        help="mean log-likelihood of DATA under MODEL",
        description="Print the mean log-likelihood per row of DATA; with --per-row, "
                    "the log-likelihood of every row as CSV.",
    )
    score.add_argument("--per-row", action="store_true",
                       help="write every row's log-likelihood instead of the mean")
    score.add_argument("--out", metavar="FILE",
                       help="output file for --per-row (.csv, .tsv, .parquet, .npy); "
                            "default stdout")
    _add_streaming_arguments(score)

    sample = _add_model_command(
        sub, "sample", _cmd_sample, data=False,
        help="draw rows from MODEL",
        description="Draw N rows from the mixture, written as CSV with the model's "
                    "column names.",
    )
    sample.add_argument("-n", "--n-samples", type=_positive_int, required=True, metavar="N",
                        help="number of rows to draw")
    sample.add_argument("--seed", type=_seed,
                        help="random seed (default: the model's random_state)")
    sample.add_argument("--labels", action="store_true",
                        help="add a 'component' column: which component drew each row")
    sample.add_argument("--out", metavar="FILE", help=_TABLE_OUT_HELP)

    plot = _add_model_command(
        sub, "plot", _cmd_plot,
        help="picture of MODEL over DATA",
        description="Draw DATA coloured by cluster under the component ellipses (1, 2 "
                    "and 3 standard deviations); with more than two features, a grid "
                    "of pairs (--dims picks the features); with one, its histogram "
                    "under the fitted density.",
    )
    plot.add_argument("--out", metavar="FIG", required=True,
                      help="image file; the format follows the extension (.png, .svg, "
                           ".pdf, ...)")
    plot.add_argument("--dims", nargs="+", type=_non_negative_int, metavar="I",
                      help="features to draw (0-based): two for one panel, more for a "
                           f"grid of pairs. Default: all, or the {PLOTTED_FEATURES} that "
                           "separate the components best when there are more")
    plot.add_argument("--color-by", choices=("cluster", "responsibility"),
                      default="cluster", help="colour of the points (default %(default)s)")
    plot.add_argument("--dpi", type=_whole_number(1, 1200), default=150,
                      help="resolution of raster images, 1 to 1200 (default %(default)s)")

    wanted = _command_in(argv)
    for name, (module, help_text) in _DELEGATED.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name != wanted:
            # Not asked for: no import (the demo pulls in matplotlib and scikit-learn).
            p.set_defaults(_handler=None)
            continue
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            # Said before parsing, whatever options follow (see main).
            parser.set_defaults(_unavailable=_unavailable(name, exc))
        else:
            mod.add_arguments(p)
            p.set_defaults(_handler=mod.run)
    return parser


def _command_in(argv):
    """The subcommand named in argv: its first argument that is not an option."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def _unavailable(name, exc):
    return f"'{PROG} {name}' is not available in this installation ({exc})"


# ------------------------------------------------------------------ helpers
def _check_output(out, inputs):
    """Refuse to write over an input file, or into a directory that does not exist."""
    if out is None:
        return
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise CommandError(f"cannot write {out}: directory {directory} does not exist")
    if os.path.isdir(out):
        raise CommandError(f"cannot write {out}: it is a directory")
    for path in inputs:
        if os.path.exists(out) and os.path.exists(path) and os.path.samefile(out, path):
            raise CommandError(
                f"--out {out} is the input file {path}; input files are never overwritten"
            )


def _check_table_output(out, inputs):
    """_check_output, and that ``out`` names a table format: before any work."""
    from ._files.table_writer import output_format

    _check_output(out, inputs)
    if out is not None:
        output_format(out)


def _read_table(args, model=None):
    """DATA as a Table; for a model with feature names, only those columns if present."""
    from ._files.data import parse_columns
    from ._files.sources import read_data

    return read_data(args.data, parse_columns(args.columns), header=args.header,
                     format=args.format, delimiter=args.delimiter,
                     default_columns=_model_names(model),
                     exclude=parse_columns(getattr(args, "exclude", None)),
                     allow_missing=_allows_missing(args, model))


def _allows_missing(args, model=None) -> bool:
    """Whether DATA may have missing values: --nan-policy marginalize, or a model
    fitted so (it scores rows with missing values)."""
    policy = getattr(model, "nan_policy", None) or getattr(args, "nan_policy", "raise")
    return policy == "marginalize"


def _model_names(model):
    """The model's feature names as strings, or None (no model, or fitted without)."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def _streams(args, model=None) -> bool:
    """Whether DATA is streamed: as --in-memory/--streaming say, else by its size."""
    from ._cli_stream import should_stream
    from ._files.data import parse_columns

    columns = parse_columns(args.columns)
    n_columns = len(columns) if columns else getattr(model, "n_features_in_", None)
    return should_stream(args.mode, args.data, args.format, n_columns)


def _show_progress(args) -> bool:
    return sys.stderr.isatty() if args.progress is None else args.progress


def _open_stream(args, label, model=None, shared=False):
    """DATA as a streamed Source that shows a bar per pass; for a model, its columns
    checked and named as on the in-memory path (see ``_model_input``)."""
    from ._cli_stream import PassBars
    from ._files.data import parse_columns
    from ._files.sources import open_source

    names = _model_names(model)
    source = open_source(args.data, parse_columns(args.columns), format=args.format,
                         header=args.header, delimiter=args.delimiter,
                         default_columns=names,
                         exclude=parse_columns(getattr(args, "exclude", None)),
                         allow_missing=_allows_missing(args, model))
    if model is None:
        return PassBars(source, label, show=_show_progress(args), shared=shared)
    _check_model_columns(model, source.path, source.feature_names, source.n_features,
                         bool(args.columns))
    # The columns are the model's, in its order (picked by name by default_columns, or
    # by position with --columns): they carry its names, as in memory.
    return PassBars(source, label, show=_show_progress(args), feature_names=names)


def _load_model(path):
    from ._files.model_files import load_estimator

    if not os.path.exists(path):
        raise CommandError(f"{path}: no such model file")
    return load_estimator(path)


def _check_model_columns(gm, path, names, n_columns, columns_given):
    """Refuse DATA's columns (``names``, None for a file without) that cannot be the
    model's features: missing names, or another count."""
    model_names = _model_names(gm)
    if model_names is not None and names is not None and not columns_given:
        missing = [n for n in model_names if n not in names]
        if missing:
            shown = ", ".join(repr(n) for n in missing[:10])
            raise CommandError(
                f"{path}: lacks column(s) {shown} that the model was fitted on; "
                "pick the columns with --columns"
            )
        return  # the model's columns are picked out by name
    if n_columns != gm.n_features_in_:
        about = "" if model_names is None else f" ({', '.join(model_names)})"
        raise CommandError(
            f"{path}: has {n_columns} column(s) but the model has "
            f"{gm.n_features_in_} feature(s){about}; pick the columns with --columns"
        )


def _model_input(gm, table, columns_given):
    """DATA arranged as the model's features (by name where both have names)."""
    values, names = table.values, table.names
    _check_model_columns(gm, table.path, names, values.shape[1], columns_given)
    model_names = _model_names(gm)
    if model_names is not None and names is not None and not columns_given:
        values = values[:, [names.index(n) for n in model_names]]
    return _as_model_input(gm, values)


def _as_model_input(gm, values):
    """Rows as the estimator takes them: a DataFrame with the model's feature names (so
    scikit-learn's name check passes), or the bare array for a model without names."""
    import numpy as np
    import pandas as pd

    names = _model_names(gm)
    if names is not None:
        return pd.DataFrame(values, columns=names, copy=False)
    return np.asarray(values)


def _model_and_data(args):
    """MODEL, and DATA arranged as its features; refuses an --out over either file."""
    _check_output(args.out, [args.data, args.model])
    gm = _load_model(args.model)
    return gm, _model_input(gm, _read_table(args, gm), bool(args.columns))


def _model_rows(args, label):
    """MODEL, DATA's rows in parts, and their number, for predict and score.

    The parts are ``(X, log_densities)``: X as the model's input, each row's log-density
    checked (see ``_log_densities``). In memory, one part, computed before anything is
    written; streamed, one part per chunk, computed as the output is written.
    """
    _check_table_output(args.out, [args.data, args.model])
    gm = _load_model(args.model)
    if not _streams(args, gm):
        X = _model_input(gm, _read_table(args, gm), bool(args.columns))
        return gm, [(X, _log_densities(gm, X, args.data))], len(X)
    source = _open_stream(args, label, gm)

    def parts():
        done = 0
        for values, _ in source.chunks():
            X = _as_model_input(gm, values)
            yield X, _log_densities(gm, X, source.path, done, source.n_rows)
            done += values.shape[0]

    return gm, parts(), source.n_rows


def _log_densities(gm, X, path, rows_before=0, n_rows=None):
    """Every row's log-density under the model; a user error if one is not finite.

    A row far outside the range of the model (say 1e200 after a fit to data near 0)
    has a log-density that does not fit in a float: its probabilities and its label
    would be meaningless, so no command prints them. X may be a chunk of DATA: rows are
    numbered after the ``rows_before`` rows before it, of ``n_rows`` in all.
    """
    import numpy as np

    per_row = np.asarray(gm.score_samples(X), dtype=np.float64)
    bad = ~np.isfinite(per_row)
    if bad.any():
        first = int(np.argmax(bad))
        n_bad = int(bad.sum())
        if n_bad == 1:
            more = ""
        elif n_rows is None or (rows_before == 0 and per_row.shape[0] == n_rows):
            more = f" ({n_bad} rows in all)"
        else:
            more = (f" ({n_bad} rows among data rows {rows_before + 1}-"
                    f"{rows_before + per_row.shape[0]})")
        raise CommandError(
            f"{path}: data row {rows_before + first + 1} is out of the model's range: its "
            f"log-density is {per_row[first]} (not a finite number){more}; such rows "
            "are too far from every component to be scored, labelled or drawn"
        )
    return per_row


def _check_memory(n_rows, n_columns):
    """Refuse a table of float64 that would not fit in this machine's memory."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: MemoryError will say
        return
    needed = n_rows * n_columns * 8
    if needed > physical:
        raise CommandError(
            f"{n_rows} rows of {n_columns} value(s) need {needed / 2**30:.3g} GiB, more "
            f"than this machine's {physical / 2**30:.3g} GiB of memory; draw fewer rows"
        )


def _feature_names(gm):
    names = _model_names(gm)
    return [f"x{j}" for j in range(gm.n_features_in_)] if names is None else names


class _HeldWarnings(list):
    """Warnings caught while a command ran (e.g. EM did not converge)."""

    def report(self):
        """Print each distinct warning as one ``gaussmix: warning: ...`` line."""
        seen = set()
        for w in self:
            text = " ".join(str(w.message).split())
            if text not in seen:
                seen.add(text)
                print(f"{PROG}: warning: {text}", file=sys.stderr)


@contextlib.contextmanager
def _held_warnings():
    """Collect warnings; ``report()`` prints them as ``gaussmix: warning:`` lines."""
    held = _HeldWarnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield held
        finally:
            held.extend(caught)


class _Progress:
    """Progress of a fit, fed by the estimator's per-iteration hook.

    ``GaussianMixture`` calls ``self._print_verbose_msg_iter_end(n_iter, ll, change)``
    after every EM iteration; wrapping it on the instance (not the class) leaves the
    estimator and other fits untouched. In memory, a bar counts the iterations. On a
    streamed source (``passes``, a :class:`~gaussmix._cli_stream.PassBars`), its bar per
    pass shows the rows; the hook only labels them with the start and log-likelihood.
    """

    _HOOKS = ("_print_verbose_msg_iter_end", "_print_verbose_msg_init_beg")

    def __init__(self, gm, enabled, stream, passes=None):
        self.gm, self.enabled, self.stream, self.bar = gm, enabled, stream, None
        self.passes = passes

    def __enter__(self):
        if not self.enabled:
            return self
        from tqdm.auto import tqdm

        gm, passes = self.gm, self.passes
        if passes is None:
            self.bar = tqdm(total=gm.max_iter * gm.n_init, file=self.stream, desc="EM",
                            unit="iter", leave=False, dynamic_ncols=True)
        iter_end, init_beg = gm._print_verbose_msg_iter_end, gm._print_verbose_msg_init_beg

        def on_iteration(n_iter, log_likelihood, change):
            iter_end(n_iter, log_likelihood, change)
            shown = f"{change:.3g}" if abs(change) != float("inf") else "-"
            if passes is not None:  # shown on the next pass's bar
                passes.postfix = (f"log-lik {log_likelihood:.6g} after iteration "
                                  f"{n_iter}, change {shown}")
                return
            self.bar.set_postfix_str(f"log-lik {log_likelihood:.6g}, change {shown}",
                                     refresh=False)
            self.bar.update(1)

        def on_init(n_init):
            init_beg(n_init)
            if gm.n_init > 1:
                what = f"init {n_init + 1}/{gm.n_init}"
                if passes is not None:
                    passes.label, passes.postfix = f"fit {what}", ""
                else:
                    self.bar.set_description(f"EM {what}", refresh=False)

        gm._print_verbose_msg_iter_end = on_iteration
        gm._print_verbose_msg_init_beg = on_init
        return self

    def __exit__(self, *exc):
        for name in self._HOOKS:
            self.gm.__dict__.pop(name, None)
        if self.bar is not None:
            self.bar.refresh()  # the last state, even if the fit outran tqdm's interval
            self.bar.close()
        return False


# ------------------------------------------------------------------ subcommands
def _cmd_fit(args):
    import math

    import numpy as np

    from ._estimator import GaussianMixture
    from ._files.model_files import save

    if getattr(args, "dask", None) and not hasattr(args, "_dask_client"):
        return _on_dask(args, _cmd_fit)  # the same command, a client open around it
    _check_output(args.out, [args.data])
    settings = dict(
        n_components=args.components, covariance_type=args.covariance,
        random_state=args.seed, max_iter=args.max_iter, tol=args.tol,
        n_init=args.n_init, reg_covar=args.reg_covar, init_params=args.init,
    )
    if args.nan_policy != "raise":
        if args.bayesian:
            raise CommandError("--nan-policy marginalize is not available with --bayesian; "
                               "fit without --bayesian, or drop the rows with missing values")
        settings["nan_policy"] = args.nan_policy
    if args.bayesian:
        gm = _bayesian_estimator(args, settings)
    elif args.weight_concentration is not None:
        raise CommandError("--weight-concentration needs --bayesian")
    else:
        gm = GaussianMixture(**settings)
    show = _show_progress(args)
    if getattr(args, "dask", None):
        table = _dask_table(args)
        n_rows, n_features = table.values.shape
        with _Progress(gm, show, sys.stderr):
            gm.fit(table.frame())
        origin = f"from {table.path} on the Dask cluster at {args.dask}"
    elif _streams(args):
        source = _open_stream(args, "fit")
        with _Progress(gm, show, sys.stderr, passes=source):  # warnings: see main
            gm.fit(source)
        n_rows, n_features = source.n_rows, source.n_features
        origin = f"streamed from {source.path}"
    else:
        table = _read_table(args)
        X = table.frame()
        n_rows, n_features = table.values.shape
        with _Progress(gm, show, sys.stderr):  # warnings: see main
            gm.fit(X)
        origin = f"from {table.path}"
    if args.out:
        save(gm, args.out)
    if args.bayesian:
        return _print_bayesian_summary(gm, n_rows, n_features, origin, args.out)
    if getattr(args, "dask", None) or _streams(args):
        # No pass for the summary: fit's last E-step measured the returned parameters
        # (lower_bound_ is their mean log-likelihood per row).
        log_likelihood = gm.lower_bound_ * n_rows
        bic = -2 * log_likelihood + gm._n_parameters() * math.log(n_rows)
    else:
        log_likelihood = float(np.sum(gm.score_samples(X)))
        bic = float(gm.bic(X))

    names = _feature_names(gm)
    from ._models.registry import get_model

    canonical = get_model(gm.covariance_type).name
    cov = gm.covariance_type + ("" if canonical == gm.covariance_type else f" ({canonical})")
    lines = [
        f"Gaussian mixture: {gm.n_components} component(s), covariance {cov}, "
        f"{n_features} feature(s), {n_rows} row(s) {origin}",
        _converged_line(gm),
        f"log-likelihood: {log_likelihood:.6f} (mean per row {log_likelihood / n_rows:.6f})",
        # One sign for BIC in the command line, select's and mclust's: 2 log L - p log n.
        f"BIC:            {-bic:.6f} (higher is better, as in select; "
        f"{gm._n_parameters()} parameters)",
        "",
    ]
    lines += _weights_and_means(gm, names)
    if args.out:
        lines += ["", f"model written to {args.out}"]
    print("\n".join(lines))
    return 0


def _converged_line(gm):
    if gm.converged_:
        return f"converged:      yes, after {gm.n_iter_} iteration(s)"
    return (f"converged:      NO, stopped after {gm.n_iter_} iteration(s) (raise "
            "--max-iter or --tol)")


def _weights_and_means(gm, names):
    """The summary's table: each component's weight and mean."""
    import numpy as np
    import pandas as pd

    table = pd.DataFrame(np.asarray(gm.means_, dtype=np.float64), columns=names)
    table.insert(0, "weight", np.asarray(gm.weights_, dtype=np.float64))
    table.index.name = "component"
    with pd.option_context("display.width", 100, "display.max_columns", 12):
        return ["weights and means:", table.to_string(float_format=lambda v: f"{v:.6g}")]


_BAYESIAN_COVARIANCES = {"VVV": "full", "EEE": "tied", "VVI": "diag", "VII": "spherical"}


def _bayesian_estimator(args, settings):
    from ._bayesian import BayesianGaussianMixture
    from ._models.registry import get_model

    name = get_model(args.covariance).name
    if name not in _BAYESIAN_COVARIANCES:
        raise CommandError(
            f"--bayesian fits covariance full, tied, diag or spherical (VVV, EEE, VVI, "
            f"VII), not {args.covariance}")
    settings["covariance_type"] = _BAYESIAN_COVARIANCES[name]
    return BayesianGaussianMixture(weight_concentration_prior=args.weight_concentration,
                                   **settings)


def _print_bayesian_summary(gm, n_rows, n_features, origin, out):
    names = _feature_names(gm)
    lines = [
        f"Bayesian Gaussian mixture: up to {gm.n_components} component(s), "
        f"{gm.n_effective_components_} effective (holding at least {n_features + 1} rows' "
        f"weight), covariance {gm.covariance_type}, {n_features} feature(s), "
        f"{n_rows} row(s) {origin}",
        _converged_line(gm),
        f"lower bound:    {gm.lower_bound_:.6f} (the evidence lower bound, as "
        "scikit-learn's; higher is better)",
        "",
    ]
    lines += _weights_and_means(gm, names)
    if out:
        lines += ["", f"model written to {out}"]
    print("\n".join(lines))
    return 0


# ------------------------------------------------------------------ --dask
def _on_dask(args, command):
    """Run ``command(args)`` with a client of the scheduler ``args.dask`` current."""
    try:
        from distributed import Client
    except ImportError:
        raise CommandError("--dask needs Dask: pip install 'gaussmix[dask]'") from None
    try:
        client = Client(args.dask, set_as_default=False, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise CommandError(f"cannot reach the Dask scheduler at {args.dask}: {exc}") from None
    with client, client.as_current():
        args._dask_client = client
        return command(args)


class _DaskTable:
    """DATA as a Dask DataFrame of the chosen columns (what ``_cmd_fit`` reads)."""

    def __init__(self, path, frame):
        from types import SimpleNamespace

        self.path, self._frame = path, frame
        self.values = SimpleNamespace(shape=(len(frame), len(frame.columns)))  # rows, columns

    def frame(self):
        return self._frame


def _dask_table(args):
    import dask.dataframe as dd

    path = args.data
    kind = args.format or os.path.splitext(path.rstrip("/"))[1].lstrip(".").lower()
    columns = None
    if args.columns:
        columns = [c.strip() for spec in args.columns for c in spec.split(",") if c.strip()]
    if kind == "parquet":
        frame = dd.read_parquet(path, columns=columns)
    elif kind in ("csv", "tsv"):
        frame = dd.read_csv(path, sep=args.delimiter or ("\t" if kind == "tsv" else ","),
                            header=None if args.header is False else "infer")
        frame.columns = [str(c) for c in frame.columns]
        if columns is not None:
            frame = frame[columns]
    else:
        raise CommandError(f"--dask reads Parquet or CSV data, not {kind or path!r}")
    return _DaskTable(path, frame)


def _cmd_predict(args):
    import pandas as pd

    from ._files.table_writer import write_table

    gm, parts, n_rows = _model_rows(args, "predict")

    def frame(X):
        if args.proba:
            proba = gm.predict_proba(X)
            return pd.DataFrame(proba, columns=[f"proba_{k}" for k in range(proba.shape[1])])
        return pd.DataFrame({"label": gm.predict(X)})

    write_table(args.out, (frame(X) for X, _ in parts), n_rows)
    return 0


def _cmd_score(args):
    import numpy as np
    import pandas as pd

    from ._files.table_writer import write_table

    if args.out and not args.per_row:
        raise CommandError("--out is for --per-row; the mean is printed")
    gm, parts, n_rows = _model_rows(args, "score")
    if args.per_row:
        write_table(args.out, (pd.DataFrame({"log_likelihood": per_row})
                               for _, per_row in parts), n_rows)
    else:
        # The sum of the parts over n: np.mean's value when there is one part.
        print(repr(sum(float(np.sum(per_row)) for _, per_row in parts) / n_rows))
    return 0


def _cmd_sample(args):
    import pandas as pd

    from ._files.table_writer import write_table

    _check_table_output(args.out, [args.model])
    gm = _load_model(args.model)
    if args.seed is not None:
        gm.random_state = args.seed
    _check_memory(args.n_samples, gm.n_features_in_ + 1)
    X, y = gm.sample(args.n_samples)
    frame = pd.DataFrame(X, columns=_feature_names(gm))
    if args.labels:
        frame["component"] = y
    write_table(args.out, [frame], len(frame))
    return 0


def _cmd_plot(args):
    from . import plot
    from ._files.model_files import atomic_write

    gm, X = _model_and_data(args)
    _log_densities(gm, X, args.data)
    values = getattr(X, "to_numpy", lambda: X)()
    # The plots predict on bare arrays; they silence scikit-learn's warning that the
    # array has no feature names, and take the names for the axis labels.
    names = _feature_names(gm)
    n_features = values.shape[1]
    if args.dims is not None:
        dims = args.dims
        if len(set(dims)) != len(dims) or max(dims) >= n_features:
            raise CommandError(
                f"--dims needs different feature indices below {n_features}, got "
                f"{' '.join(map(str, dims))}"
            )
    elif n_features > PLOTTED_FEATURES:
        dims = plot._separated_features(gm, PLOTTED_FEATURES)
        shown = ", ".join(f"{d} ({names[d]})" for d in dims)
        warnings.warn(f"the model has {n_features} features; drawing the "
                      f"{PLOTTED_FEATURES} whose components lie furthest apart: {shown}. "
                      "Choose others with --dims")
    else:
        dims = list(range(n_features))
    if len(dims) == 2:
        fig = plot.mixture(gm, values, dims=dims, color_by=args.color_by,
                           feature_names=names).figure
    else:  # a grid of pairs; for one feature, its histogram under the fitted density
        fig = plot.pairs(gm, values, dims=dims, color_by=args.color_by,
                         feature_names=names)
    fmt = os.path.splitext(args.out)[1].lstrip(".").lower() or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise CommandError(
            f"cannot write a {fmt!r} image; use one of {', '.join(sorted(supported))}"
        )
    atomic_write(args.out, lambda f: fig.savefig(f, format=fmt, dpi=args.dpi,
                                                 bbox_inches="tight"))
    print(f"figure written to {args.out}")
    return 0


# ------------------------------------------------------------------ entry point
def _error(message):
    text = " ".join(str(message).split())  # always one line
    print(f"{PROG}: error: {text}", file=sys.stderr)


def _os_message(exc):
    """An OSError as a user reads it: the file, then what went wrong."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def main(argv=None) -> int:
    """Run the ``gaussmix`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 for a user error (one line on stderr), 2 for a bad command
        line, 130 when interrupted.
    """
    from ._errors import DataError, ModelFileError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
        unavailable = parser.get_default("_unavailable")
        if unavailable:
            _error(unavailable)
            return 1
        args = parser.parse_args(argv)
    except _UsageError as exc:
        _error(exc)
        return 2
    except SystemExit as exc:  # --help and --version print and exit 0
        return exc.code if isinstance(exc.code, int) else 0
    handler = getattr(args, "_handler", None)
    if handler is None:
        _error(f"no command given; choose one of fit, predict, score, sample, plot, "
               f"select, demo (see '{PROG} --help')")
        return 2
    try:
        # Warnings (NumPy's RuntimeWarnings included) become one line each after a
        # success; after an error only the error line is printed.
        with _held_warnings() as held:
            status = int(handler(args) or 0)
            sys.stdout.flush()
        if status == 0:
            held.report()
        return status
    except (CommandError, DataError, ModelFileError) as exc:
        _error(exc)
    except BrokenPipeError:
        # The reader went away (``gaussmix predict ... | head``): not an error to report.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        _error(_os_message(exc))
    except MemoryError as exc:
        _error(f"out of memory{': ' + str(exc) if str(exc) else ''}")
    except (ValueError, OverflowError) as exc:  # e.g. fewer rows than components
        _error(exc or type(exc).__name__)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
