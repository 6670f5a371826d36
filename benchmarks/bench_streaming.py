"""Streaming EM from a file larger than the budget: a 40M x 16 Parquet file (issue 10).

Usage::

    python benchmarks/bench_streaming.py                       # 40M rows, ~5.1 GB in /tmp
    python benchmarks/bench_streaming.py --reuse --delete      # file kept from a run, then removed
    python benchmarks/bench_streaming.py --rows 4000000 --slice-rows 1000000   # quick
    python benchmarks/bench_streaming.py --npy                 # the .npy source too
    python benchmarks/bench_streaming.py --profile             # where a pass's reading time goes

Issue 10's acceptance: fitting K = 16 full from the file keeps the peak resident memory
under 1 GB, and an EM pass over the file costs at most 1.3x the in-memory time per row
measured in the same run on a slice that fits.

What it does:

* writes the data once, reproducibly (a 16-component 16-D mixture, seed ``--seed``), row
  group by row group (``--row-group-rows``) through ``pyarrow.parquet.ParquetWriter``:
  never more than one row group in memory. ``--reuse`` keeps a file of the right shape;
* starts every fit from the same fixed parameters (the generator's weights, its means
  perturbed, its covariances 1.5x too wide: no initialisation pass), ``tol=0``,
  ``max_iter=--passes``, so a fit reads the file ``passes + 1`` times (the start's
  E-step, then one pass per iteration);
* runs each measurement in a fresh subprocess, alternating: the in-memory fit on the
  first ``--slice-rows`` rows loaded as a NumPy array, then the streaming fit of
  ``gaussmix.read_parquet`` (and of ``gaussmix.read_npy`` with ``--npy``), ``--repeats``
  times. A process's peak resident memory is its fit's alone: ``ru_maxrss`` and
  ``VmHWM`` at the end, and ``VmRSS`` sampled every 20 ms;
* times every pass by wrapping the source's ``chunks()``: wall time from the pass's
  first request to its last chunk's statistics, the part of it the kernel spent waiting
  for the next chunk (the read-ahead queue was empty), and the process's CPU time;
* prints seconds per pass, ns per row, the ratio streaming / in-memory (medians of the
  EM passes, the start's pass left out), the peak RSS, and a verdict line.

The file is in the page cache after it is written (the 2-core box has 24 GB of memory),
so the passes read it from memory, not disk: the number measures decoding, not the
disk. ``--cold`` evicts the file's pages (``posix_fadvise(DONTNEED)``) before each
streaming fit, so its first pass reads from disk (printed as pass 0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

N_COMPONENTS = 16
N_FEATURES = 16
REG_COVAR = 1e-6
DEFAULT_PATH = "/tmp/gaussmix_bench_streaming.parquet"
RESULT = "@@RESULT "


# ---------------------------------------------------------------- the data
def _random_spd(rng, d):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * rng.uniform(0.5, 2.0, d)) @ q.T


def mixture(seed):
    """The generator (weights, means, covariances) and the fixed start of every fit."""
    rng = np.random.default_rng(seed)
    k, d = N_COMPONENTS, N_FEATURES
    weights = rng.uniform(0.5, 1.5, k)
    weights /= weights.sum()
    means = rng.normal(scale=3.0, size=(k, d)) + 5.0
    covs = np.stack([_random_spd(rng, d) for _ in range(k)])
    start = dict(weights_init=weights,
                 means_init=means + rng.normal(scale=0.3, size=means.shape),
                 precisions_init=np.linalg.inv(1.5 * covs))
    return weights, means, covs, start


def row_group(seed, index, n, weights, means, chols):
    """Rows of row group ``index`` (its own generator: the same rows for any --rows)."""
    rng = np.random.default_rng([seed, index])
    labels = rng.choice(len(weights), size=n, p=weights)
    X = rng.standard_normal((n, means.shape[1]))
    for j in range(len(weights)):
        rows = np.flatnonzero(labels == j)
        X[rows] = X[rows] @ chols[j].T + means[j]
    return X


def column_names():
    return [f"x{j}" for j in range(N_FEATURES)]


def write_parquet(path, n_rows, group_rows, seed, compression):
    import pyarrow as pa
    import pyarrow.parquet as pq

    weights, means, covs, _ = mixture(seed)
    chols = np.linalg.cholesky(covs)
    schema = pa.schema([(name, pa.float64()) for name in column_names()])
    tmp = path + ".partial"
    t = time.perf_counter()
    with pq.ParquetWriter(tmp, schema, compression=compression) as writer:
        for index, start in enumerate(range(0, n_rows, group_rows)):
            n = min(group_rows, n_rows - start)
            columns = np.ascontiguousarray(row_group(seed, index, n, weights, means, chols).T)
            writer.write_table(pa.Table.from_arrays([pa.array(c) for c in columns],
                                                    schema=schema),
                               row_group_size=group_rows)
            if index % 10 == 9:
                print(f"  wrote {start + n:,} rows ({time.perf_counter() - t:.0f} s)",
                      flush=True)
    os.replace(tmp, path)
    print(f"wrote {path}: {n_rows:,} rows in {time.perf_counter() - t:.0f} s, "
          f"{os.path.getsize(path) / 1e9:.2f} GB", flush=True)


def write_files(args):
    if args.reuse and parquet_matches(args.path, args.rows, args.row_group_rows):
        print(f"reusing {args.path}")
    else:
        write_parquet(args.path, args.rows, args.row_group_rows, args.seed, args.compression)
    if args.npy and not (args.reuse and os.path.exists(args.npy_path)
                         and os.path.getsize(args.npy_path) >= args.rows * N_FEATURES * 8):
        write_npy(args.path, args.npy_path)


def parquet_matches(path, n_rows, group_rows):
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except Exception:
        return False
    return (meta.num_rows == n_rows and meta.num_columns == N_FEATURES
            and meta.row_group(0).num_rows == min(group_rows, n_rows))


def write_npy(parquet_path, npy_path):
    """The Parquet file's rows as a .npy, copied row group by row group."""
    import pyarrow.parquet as pq

    t = time.perf_counter()
    pf = pq.ParquetFile(parquet_path)
    n = pf.metadata.num_rows
    tmp = npy_path + ".partial"
    with open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.dtype(np.float64).str, "fortran_order": False,
                "shape": (n, N_FEATURES)})
        for g in range(pf.metadata.num_row_groups):
            table = pf.read_row_group(g)
            block = np.column_stack([c.to_numpy() for c in table.columns])
            f.write(block.tobytes())
    os.replace(tmp, npy_path)
    print(f"wrote {npy_path}: {n:,} rows in {time.perf_counter() - t:.0f} s, "
          f"{os.path.getsize(npy_path) / 1e9:.2f} GB", flush=True)


def evict(path):
    """Drop the file's pages from the page cache (clean pages only; no privileges)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cached_fraction(path):
    """Fraction of the file in the page cache (util-linux ``fincore``), or None."""
    if shutil.which("fincore") is None:
        return None
    try:
        out = subprocess.run(["fincore", "-b", "-n", "-o", "RES,SIZE", path],
                             capture_output=True, text=True, timeout=60).stdout.split()
        return int(out[0]) / max(int(out[1]), 1)
    except Exception:
        return None


# ---------------------------------------------------------------- in the child
class MemoryWatch:
    """Samples VmRSS (and PyArrow's allocated bytes) on a thread; peak and HWM at the end."""

    def __init__(self, interval=0.02):
        self.interval, self.peak_rss, self.peak_arrow = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def status():
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0]) * 1024
        return out

    def _run(self):
        arrow = sys.modules.get("pyarrow")
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self.status()["VmRSS"])
            if arrow is not None:
                self.peak_arrow = max(self.peak_arrow, arrow.total_allocated_bytes())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed_passes(source, record):
    """Wrap ``source.chunks`` so that every pass appends (wall, wait, cpu, rows) to
    ``record``: wait = the time the caller spent inside ``next`` (for a file source,
    the kernel waiting for the read-ahead thread)."""
    inner = source.chunks

    def chunks():
        t0, c0, wait, rows = time.perf_counter(), cpu_seconds(), 0.0, 0
        it = iter(inner())
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                break
            wait += time.perf_counter() - t
            rows += item[0].shape[0]
            yield item
        record.append(dict(wall=time.perf_counter() - t0, wait=wait,
                           cpu=cpu_seconds() - c0, rows=rows))

    source.chunks = chunks


def fit_passes(source, seed, passes):
    import warnings

    from gaussmix import GaussianMixture

    _, _, _, start = mixture(seed)
    record = []
    timed_passes(source, record)
    gm = GaussianMixture(N_COMPONENTS, covariance_type="full", tol=0, max_iter=passes,
                         reg_covar=REG_COVAR, **start)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 on purpose
        gm.fit(source)
    return dict(passes=record, fit_s=time.perf_counter() - t,
                lower_bound=float(gm.lower_bound_), n_iter=int(gm.n_iter_))


def child(args):
    import gaussmix
    from gaussmix._engine.sources import ArraySource, default_chunk_rows

    out = dict(kind=args.child)
    with MemoryWatch() as watch:
        if args.child == "memory":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(args.path)
            parts, n = [], 0
            for g in range(pf.metadata.num_row_groups):  # group by group: see profile
                table = pf.read_row_group(g)
                take = min(table.num_rows, args.slice_rows - n)
                parts.append(np.column_stack([c.to_numpy() for c in table.columns])[:take])
                n += take
                if n >= args.slice_rows:
                    break
            X = np.ascontiguousarray(np.concatenate(parts))
            del parts
            source = ArraySource(X, None, default_chunk_rows(N_COMPONENTS, N_FEATURES))
        elif args.child == "parquet":
            source = gaussmix.read_parquet(args.path, chunk_rows=args.chunk_rows)
        else:
            source = gaussmix.read_npy(args.npy_path, chunk_rows=args.chunk_rows)
        out["chunk_rows"] = int(source.chunk_rows)
        out["rss_before_fit"] = MemoryWatch.status()["VmRSS"]
        out.update(fit_passes(source, args.seed, args.passes))
    status = MemoryWatch.status()
    out.update(ru_maxrss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
               vm_hwm=status["VmHWM"], peak_vmrss_sampled=watch.peak_rss,
               peak_arrow_bytes=watch.peak_arrow)
    print(RESULT + json.dumps(out), flush=True)


def run_child(kind, args, stream=False):
    """Run ``kind`` in a fresh process; its result (or, with ``stream``, its output).
    A kind ending in ``@alt`` imports gaussmix from ``--alt-src`` instead."""
    env = None
    if kind.endswith("@alt"):
        kind = kind[:-len("@alt")]
        env = dict(os.environ, PYTHONPATH=os.path.abspath(args.alt_src))
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--path", args.path,
           "--npy-path", args.npy_path, "--passes", str(args.passes), "--seed",
           str(args.seed), "--slice-rows", str(args.slice_rows), "--rows", str(args.rows),
           "--row-group-rows", str(args.row_group_rows), "--compression", args.compression,
           "--profile-repeats", str(args.profile_repeats)]
    cmd += [flag for flag, on in (("--reuse", args.reuse), ("--npy", args.npy)) if on]
    if args.chunk_rows:
        cmd += ["--chunk-rows", str(args.chunk_rows)]
    if stream:
        sys.stdout.flush()
        if subprocess.run(cmd, env=env).returncode:
            raise SystemExit(f"{kind} failed")
        return None
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{kind} run failed (exit {proc.returncode})")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT)][-1]
    return json.loads(line[len(RESULT):])


# ---------------------------------------------------------------- the reading side
def profile_reading(args):
    """One pass of the reading side alone (no kernel) per variant, on this thread: the
    library's reader as it is, then its steps one by one and the alternatives tried.
    After one untimed pass (page cache, imports), ``--profile-repeats`` rounds, the
    variants alternating; medians. ``arrow MiB``: the most PyArrow held at once
    (``total_allocated_bytes`` after every batch)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import gaussmix
    from gaussmix._files.data import _check_finite, record_batch_values

    src = gaussmix.read_parquet(args.path, chunk_rows=args.chunk_rows)
    n, chunk, path = src.n_rows, src.chunk_rows, src.path
    peak = [0]

    def batches(per_group=False, buffer_size=0, use_threads=True, pre_buffer=True):
        with pq.ParquetFile(path, buffer_size=buffer_size, pre_buffer=pre_buffer) as pf:
            groups = [[g] for g in range(pf.metadata.num_row_groups)] if per_group \
                else [None]
            for g in groups:
                for b in pf.iter_batches(batch_size=chunk, row_groups=g,
                                         use_threads=use_threads):
                    peak[0] = max(peak[0], pa.total_allocated_bytes())
                    yield b

    def fast_check(X, done):
        if not np.isfinite(np.sum(X)):
            _check_finite(path, X, done)

    def reader(convert=None, check=None, **kw):
        def run():
            done = 0
            for b in batches(**kw):
                if convert is not None:
                    X = convert(b)
                    if check is not None:
                        check(X, done)
                done += b.num_rows
        return run

    def library():
        for _ in src._checked_chunks():
            peak[0] = max(peak[0], pa.total_allocated_bytes())

    def library_read_ahead():
        for _ in src.chunks():
            peak[0] = max(peak[0], pa.total_allocated_bytes())

    C = record_batch_values
    def F(batch):  # record_batch_values, but column-major: one contiguous copy a column
        out = np.empty((batch.num_rows, batch.num_columns), order="F")
        for j in range(batch.num_columns):
            out[:, j] = batch.column(j).to_numpy(zero_copy_only=False)
        return out

    exact = lambda X, done: _check_finite(path, X, done)  # noqa: E731
    g = dict(pre_buffer=False, buffer_size=1 << 20)
    variants = {
        "library: _checked_chunks (decode, rows, check)": library,
        "library: chunks() through read_ahead, idle consumer": library_read_ahead,
        "decode only: iter_batches (PyArrow defaults: pre_buffer)": reader(),
        "decode only: iter_batches per row group": reader(per_group=True),
        "decode only: pre_buffer=False": reader(pre_buffer=False),
        "decode only: pre_buffer=False, buffer_size 1 MiB": reader(**g),
        "decode only: pre_buffer=False, buffer 1 MiB, use_threads=False":
            reader(**g, use_threads=False),
        "no pre_buffer+buffer, rows C-order (record_batch_values)": reader(C, **g),
        "no pre_buffer+buffer, rows F-order": reader(F, **g),
        "no pre_buffer+buffer, C-order, row-wise finite check": reader(C, exact, **g),
        "no pre_buffer+buffer, F-order, one-sum finite check": reader(F, fast_check, **g),
    }
    reader(**g)()  # warm-up: the file's pages, PyArrow's pool
    times = {k: [] for k in variants}
    for _ in range(max(1, args.profile_repeats)):
        for label, fn in variants.items():
            peak[0] = 0
            c, t = cpu_seconds(), time.perf_counter()
            fn()
            times[label].append((time.perf_counter() - t, cpu_seconds() - c, peak[0]))
    print(f"\nReading side alone (no kernel; medians of {args.profile_repeats} alternating "
          f"rounds), {n:,} rows, chunk_rows {chunk:,}: wall s, ns/row; process CPU "
          "ns/row; most PyArrow held at once", flush=True)
    for label, ts in times.items():
        wall = statistics.median(t[0] for t in ts)
        cpu = statistics.median(t[1] for t in ts)
        print(f"  {label:62s} {wall:7.2f} s {1e9 * wall / n:6.1f} ns/row  CPU "
              f"{1e9 * cpu / n:6.1f} ns/row  arrow {max(t[2] for t in ts) / 2**20:6.0f} MiB",
              flush=True)
    meta = pq.ParquetFile(path).metadata
    col = meta.row_group(0).column(0)
    print(f"  PyArrow memory pool {pa.default_memory_pool().backend_name}, cpu_count "
          f"{pa.cpu_count()}, io_thread_count {pa.io_thread_count()}; file: "
          f"{meta.num_row_groups} row groups of {meta.row_group(0).num_rows:,} rows, "
          f"{col.compression}, encodings {col.encodings}, created by {meta.created_by}",
          flush=True)


# ---------------------------------------------------------------- the parent
def print_environment(args):
    import pyarrow as pa
    from threadpoolctl import threadpool_info

    import gaussmix
    from gaussmix._engine import parallel

    la = os.getloadavg()
    print(f"python {platform.python_version()}  numpy {np.__version__}  pyarrow "
          f"{pa.__version__} (memory pool {pa.default_memory_pool().backend_name})  "
          f"gaussmix {gaussmix.__version__}")
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
          f"cores; load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}; memory "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB")
    print(f"gaussmix kernel threads: {parallel.get_num_threads()}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '')}")
    print("threadpoolctl:")
    for lib in threadpool_info():
        print(f"  {lib['user_api']:7s} {lib['internal_api']:9s} v{lib.get('version')} "
              f"threads={lib['num_threads']} arch={lib.get('architecture', '-')} "
              f"{os.path.basename(lib['filepath'])}")


def summarize(run):
    em = run["passes"][1:] or run["passes"]
    wall = statistics.median(p["wall"] for p in em)
    rows = em[0]["rows"]
    return dict(s_pass=wall, ns_row=1e9 * wall / rows,
                wait=statistics.median(p["wait"] for p in em),
                cpu=statistics.median(p["cpu"] for p in em), rows=rows,
                pass0=run["passes"][0]["wall"])


def print_run(label, run, cached=None):
    s = summarize(run)
    passes = " ".join(f"{p['wall']:.2f}" for p in run["passes"])
    print(f"{label:11s} {s['rows']:>11,} rows  {s['s_pass']:7.2f} s/pass  "
          f"{s['ns_row']:6.1f} ns/row  kernel waited {s['wait']:5.2f} s/pass  CPU "
          f"{s['cpu']:6.2f} s/pass ({s['cpu'] / s['s_pass']:.2f} cores)  peak RSS "
          f"{run['ru_maxrss'] / 2**20:6.0f} MiB (HWM {run['vm_hwm'] / 2**20:.0f}, sampled "
          f"{run['peak_vmrss_sampled'] / 2**20:.0f}, before fit "
          f"{run['rss_before_fit'] / 2**20:.0f}, arrow {run['peak_arrow_bytes'] / 2**20:.0f})"
          f"  chunk_rows {run['chunk_rows']:,}", flush=True)
    print(f"{'':11s} passes (s, first = the start's E-step): {passes}; lower bound "
          f"{run['lower_bound']:.8f}"
          + ("" if cached is None else f"; file in page cache before: {100 * cached:.0f}%"),
          flush=True)
    return s


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--path", default=DEFAULT_PATH, help="the Parquet file (default %(default)s)")
    p.add_argument("--rows", type=int, default=40_000_000)
    p.add_argument("--row-group-rows", type=int, default=1_000_000)
    p.add_argument("--compression", default="snappy",
                   help="Parquet codec when writing (default %(default)s, PyArrow's)")
    p.add_argument("--seed", type=int, default=10)
    p.add_argument("--reuse", action="store_true",
                   help="keep an existing file of the right shape instead of rewriting it")
    p.add_argument("--delete", action="store_true", help="delete the file(s) at the end")
    p.add_argument("--passes", type=int, default=3, help="EM iterations (max_iter, tol=0)")
    p.add_argument("--slice-rows", type=int, default=4_000_000,
                   help="rows of the in-memory fit (the file's first)")
    p.add_argument("--repeats", type=int, default=2,
                   help="alternations of in-memory and streaming fits")
    p.add_argument("--chunk-rows", type=int, default=None,
                   help="the sources' chunk_rows (default theirs)")
    p.add_argument("--npy", action="store_true", help="also stream the same rows as .npy")
    p.add_argument("--npy-path", default=None, help="default: --path with .npy")
    p.add_argument("--cold", action="store_true",
                   help="evict the file from the page cache before each streaming fit")
    p.add_argument("--profile", action="store_true",
                   help="also time the reading side alone (decode, convert, check)")
    p.add_argument("--alt-src", default=None,
                   help="also run the Parquet streaming fit with gaussmix imported from "
                        "this directory (a changed copy of src/), alternating with the others")
    p.add_argument("--profile-repeats", type=int, default=2)
    p.add_argument("--write-only", action="store_true", help="write the file(s) and stop")
    p.add_argument("--child", choices=["memory", "parquet", "npy", "write", "profile"],
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.npy_path is None:
        args.npy_path = os.path.splitext(args.path)[0] + ".npy"
    if args.child == "write":
        return write_files(args)
    if args.child == "profile":
        return profile_reading(args)
    if args.child:
        return child(args)

    print_environment(args)
    # Writing, profiling and every fit run in child processes: this one stays small,
    # since a child started by vfork + exec inherits its parent's high-water mark in
    # ru_maxrss (Linux keeps the larger of the old and new memory's).
    run_child("write", args, stream=True)
    if args.write_only:
        return 0
    print(f"file: {args.path}, {os.path.getsize(args.path) / 1e9:.2f} GB, {args.rows:,} x "
          f"{N_FEATURES} float64, row groups of {args.row_group_rows:,}; K={N_COMPONENTS} "
          f"full, tol=0, max_iter={args.passes} (so {args.passes + 1} passes per fit, the "
          f"first the start's E-step), fixed start, in-memory slice {args.slice_rows:,} rows")
    if args.profile:
        run_child("profile", args, stream=True)
    print("\nfits (each in a fresh process), alternating:", flush=True)
    kinds = ["memory", "parquet"] + (["npy"] if args.npy else [])
    if args.alt_src:
        print(f"kinds marked @alt import gaussmix from {os.path.abspath(args.alt_src)}")
        kinds.insert(2, "parquet@alt")
    results = {k: [] for k in kinds}
    for r in range(args.repeats):
        for kind in kinds:
            target = args.npy_path if kind.startswith("npy") else args.path
            if kind != "memory" and args.cold:
                evict(target)
            cached = cached_fraction(target) if kind != "memory" else None
            run = run_child(kind, args)
            results[kind].append(print_run(kind, run, cached) | dict(
                rss=max(run["ru_maxrss"], run["vm_hwm"], run["peak_vmrss_sampled"]),
                chunk_rows=run["chunk_rows"]))

    print("\nSummary (medians over fits of the per-fit medians over EM passes, the "
          "start's pass left out)")
    mem = statistics.median(s["ns_row"] for s in results["memory"])
    mem_cpu = statistics.median(1e9 * s["cpu"] / s["rows"] for s in results["memory"])
    print(f"  in-memory ({args.slice_rows:,} rows): {mem:.1f} ns/row "
          f"({statistics.median(s['s_pass'] for s in results['memory']):.2f} s/pass; CPU "
          f"{mem_cpu:.1f} ns/row)")
    verdicts = []
    for kind in kinds[1:]:
        ns = statistics.median(s["ns_row"] for s in results[kind])
        sp = statistics.median(s["s_pass"] for s in results[kind])
        rss = max(s["rss"] for s in results[kind])
        cpu = statistics.median(1e9 * s["cpu"] / s["rows"] for s in results[kind])
        ratio = ns / mem
        print(f"  {kind} streaming ({args.rows:,} rows, chunk_rows "
              f"{results[kind][0]['chunk_rows']:,}): {sp:.2f} s/pass, {ns:.1f} ns/row, "
              f"ratio streaming / in-memory {ratio:.2f} (per fit: "
              + ", ".join(f"{s['ns_row'] / mem:.2f}" for s in results[kind])
              + f"); CPU {cpu:.1f} ns/row, {cpu / mem_cpu:.2f}x in-memory's; peak RSS "
              f"{rss / 1e9:.3f} GB ({rss / 2**20:.0f} MiB: the largest of ru_maxrss, VmHWM "
              "and the sampled VmRSS over its fits)")
        verdicts.append(f"{kind}: peak RSS {rss / 1e9:.2f} GB < 1 GB? "
                        f"{'YES' if rss < 1e9 else 'NO'}; ratio {ratio:.2f} <= 1.3? "
                        f"{'YES' if ratio <= 1.3 else 'NO'}")
    print("\nVERDICT  " + "   |   ".join(verdicts))
    la = os.getloadavg()
    print(f"load average at the end: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")
    if args.delete:
        for path in [args.path] + ([args.npy_path] if args.npy else []):
            if os.path.exists(path):
                os.remove(path)
                print(f"deleted {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
