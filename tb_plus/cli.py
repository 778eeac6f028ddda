"""Command line entry point: ``tb-plus``.

Subcommands:
  index LOGDIR [--cache-dir DIR] [--no-verify-crc]
      Build or refresh the store's index for LOGDIR and print, per run, how many
      tags it holds, followed by any per-file problems.

  diagnose LOGDIR [--json] [--fail-on LEVEL] [--run RUN ...] [--config FILE] [--cache-dir DIR]
      Index LOGDIR (reusing the persistent index) and run the diagnostic rules on its runs; print
      the findings (or a JSON report). Exit code 1 when a finding is at or above --fail-on
      (info, warning, error, never; default error), 2 on a usage error, else 0: a CI pipeline
      can stop on a broken training.

  export LOGDIR -o OUT [--format {parquet,csv,jsonl}] [--run PATTERN ...] [--tag PATTERN ...]
         [--x step|wall_time|relative|tag:NAME] [--cache-dir DIR] [--no-verify-crc]
      Write every chosen scalar point (run, tag, step, wall_time, value, plus `relative` or `x` for another
      x axis) to OUT, streamed block by block (tb_plus/export.py: formats, NaN/Inf, the temporary file).
      The format comes from OUT's extension (.parquet/.pq, .csv, .jsonl/.ndjson) unless --format is given.
      A progress line goes to stderr when stderr is a terminal. Exit code 0 when written, 1 when nothing
      matched (no file is written then), 2 on a usage error (not a directory, unknown extension or
      format, bad pattern or --x, pyarrow missing for Parquet).

  query LOGDIR {runs,tags,stats,series} [options] [--cache-dir DIR] [--no-verify-crc]
      Print a JSON report on stdout (tb_plus/cli_query.py; NaN and +-inf as null):
        runs   [--run P] [--live-seconds S] [--stale-seconds S] [--max-tags N]
        tags   [PATTERN ...] [--run P] [--kind scalars|histograms|tensors|blobs]
        stats  --tag P [--run P]
        series --tag P [--run P] [--points N] [--x AXIS]
      Exit code 0 with the report, 1 when nothing matched, 2 on a usage error. On 1 and 2 stdout holds
      {"error": MESSAGE} (a JSON reader always gets JSON) and stderr the same message; argparse's own
      errors (an unknown option) print the usage on stderr only, exit code 2.

Run and tag patterns: an exact name, a glob (a name holding *, ? or [), or re:REGEX (searched); globs
and regular expressions ignore case; repeat the option for a union (tb_plus.frame.select).

Nothing heavy is imported at module import time; the store is imported only when
a subcommand runs.
"""

import argparse
import os
import sys


def _is_logdir(path):
    """A local directory, or an fsspec URL (s3://bucket/prefix, gs://..., memory://...)."""
    from tb_plus.store.remote import is_url

    return is_url(path) or os.path.isdir(path)


def _open_logdir(args):
    """The log directory of `index` and `diagnose`, indexed (or its index refreshed)."""
    from tb_plus.store import Logdir

    kwargs = {"verify_crc": args.verify_crc}
    if args.cache_dir is not None:
        kwargs["cache_dir"] = args.cache_dir
    return Logdir(args.logdir, **kwargs).refresh()


def _cmd_index(args):
    if not _is_logdir(args.logdir):
        sys.stderr.write("tb-plus index: not a directory: %r\n" % args.logdir)
        return 2
    ld = _open_logdir(args)

    runs = sorted(ld.runs())
    print("logdir: %s" % args.logdir)
    print("runs: %d" % len(runs))
    for run in runs:
        print("  %-40s %6d tags" % (run if run else ".", len(ld.tags(run))))
    if ld.remote is not None:
        print("requests: %s" % ", ".join("%s %d" % kv for kv in ld.remote.requests().items()))
    if ld.shared is not None:
        print("index requests (%s): %s" % (ld.shared.url, ", ".join("%s %d" % kv
                                                                     for kv in ld.shared.remote.requests().items())))
    problems = list(ld.problems())
    print("problems: %d" % len(problems))
    for problem in problems:
        print("  %s" % (problem,))
    return 0


def _cmd_diagnose(args):
    import json

    from tb_plus.diagnostics import Config, diagnose, rules_json
    from tb_plus.diagnostics.config import level

    if not _is_logdir(args.logdir):
        sys.stderr.write("tb-plus diagnose: not a directory: %r\n" % args.logdir)
        return 2
    try:
        cfg = Config.from_json(args.config) if args.config else Config()
    except (OSError, ValueError) as e:
        sys.stderr.write("tb-plus diagnose: bad --config: %s\n" % (e,))
        return 2
    ld = _open_logdir(args)
    runs = ld.runs()
    if args.run:
        unknown = [r for r in args.run if r not in runs]
        if unknown:
            sys.stderr.write("tb-plus diagnose: no run %r in %s (runs: %s)\n"
                             % (unknown[0], args.logdir, ", ".join(runs[:20]) or "none"))
            return 2
    report = diagnose(ld, args.run or None, cfg)
    worst = report.worst()
    failed = worst is not None and level(worst) >= level(args.fail_on)
    if args.json:
        out = report.to_json()
        out.update(logdir=args.logdir, worst=worst, fail_on=args.fail_on, failed=failed, rules=rules_json(cfg))
        print(json.dumps(out, indent=1, allow_nan=False))
    else:
        _print_report(args.logdir, report)
    return 1 if failed else 0


def _print_report(logdir, report):
    marks = {"error": "E", "warning": "W", "info": "i"}
    n = {k: sum(c[k] for c in report.runs.values()) for k in marks}
    print("%s: %d runs, %d errors, %d warnings, %d info" % (logdir, len(report.runs), n["error"], n["warning"],
                                                           n["info"]))
    for f in report.findings:
        where = "" if f.step is None else (" @ step %d" % f.step + ("" if f.step_end is None else "-%d" % f.step_end))
        print("[%s] %s: %s%s  (%s; %s)" % (marks[f.severity], f.run, f.title, where, f.rule, ", ".join(f.tags[:3])))
        print("      %s" % f.message)
        print("      try: %s" % f.prompt)
    by_kind = {}
    for r, k in report.kinds.items():
        by_kind.setdefault(k, []).append(r)
    for k in sorted(by_kind):
        rs = by_kind[k]
        print("taken for %s: %s" % (k, ", ".join(rs[:20]) + (" ..." if len(rs) > 20 else "")))
    healthy = [r for r, c in report.runs.items() if not any(c.values())]
    if healthy:
        print("no findings: %s" % ", ".join(healthy[:50]) + (" ..." if len(healthy) > 50 else ""))


def _patterns(values):
    """Repeated --run/--tag options -> None (all) or the list of patterns."""
    return list(values) if values else None


def _cmd_export(args):
    from tb_plus import export

    def usage(msg):
        sys.stderr.write("tb-plus export: %s\n" % msg)
        return 2

    if not _is_logdir(args.logdir):
        return usage("not a directory: %r" % args.logdir)
    runs, tags = _patterns(args.run), _patterns(args.tag)
    try:
        fmt = export.format_for(args.output, args.format)
        export.check_options(runs, tags, args.x)
        if fmt == "parquet":
            export._pyarrow()
    except (ValueError, ImportError) as e:
        return usage(str(e))
    if os.path.isdir(args.output):
        return usage("the output is a directory: %r" % args.output)
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        return usage("no such directory for the output: %r" % os.path.dirname(os.path.abspath(args.output)))
    ld = _open_logdir(args)
    progress = sys.stderr if sys.stderr.isatty() else None
    rows = export.export_scalars(ld, args.output, fmt, runs=runs, tags=tags, x=args.x, progress=progress)
    if rows == 0:
        sys.stderr.write("tb-plus export: no scalar point matched (runs %s, tags %s) in %s; nothing written\n"
                         % (runs or "all", tags or "all", args.logdir))
        return 1
    return 0


def _query_fail(code, msg):
    import json

    sys.stderr.write("tb-plus query: %s\n" % msg)
    print(json.dumps({"error": msg}))
    return code


def _cmd_query(args):
    import json

    from tb_plus import cli_query
    from tb_plus.frame import select

    if not _is_logdir(args.logdir):
        return _query_fail(2, "not a directory: %r" % args.logdir)
    runs = _patterns(args.run)
    tags = _patterns(getattr(args, "tag", None) or getattr(args, "pattern", None))
    try:
        select([], runs)
        select([], tags)
        if args.what == "series":
            from tb_plus.query.xaxis import parse_x

            parse_x(args.x)
            if not 1 <= args.points <= cli_query.MAX_POINTS:
                raise ValueError("--points must be in [1, %d], not %d" % (cli_query.MAX_POINTS, args.points))
        if args.what == "runs" and (args.live_seconds <= 0 or args.max_tags < 0):
            raise ValueError("--live-seconds must be > 0 and --max-tags >= 0")
    except ValueError as e:
        return _query_fail(2, str(e))
    ld = _open_logdir(args)
    if args.what == "runs":
        report = cli_query.runs_report(ld, runs, live_seconds=args.live_seconds, stale_seconds=args.stale_seconds,
                                       max_tags=args.max_tags)
        found = report["runs"]
    elif args.what == "tags":
        report = cli_query.tags_report(ld, tags, runs, kind=args.kind)
        found = report["runs"]
    elif args.what == "stats":
        report = cli_query.stats_report(ld, tags, runs)
        found = report["stats"]
    else:
        report = cli_query.series_report(ld, tags, runs, points=args.points, x=args.x)
        found = report["series"]
    if not found:
        what = "run" if args.what == "runs" else "tag"
        return _query_fail(1, "no %s matched (runs %s, tags %s) in %s" % (what, runs or "all", tags or "all",
                                                                          args.logdir))
    report = {"logdir": args.logdir, **report}
    print(json.dumps(report, allow_nan=False, ensure_ascii=False))
    return 0


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="tb-plus", description="TensorBoard+ command line tools."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p_index = sub.add_parser(
        "index", help="index (or refresh the index of) a log directory"
    )
    p_index.add_argument("logdir", metavar="LOGDIR", help="directory of event files")
    p_index.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=None,
        help="where the index is kept (default: the store's default cache dir)",
    )
    p_index.add_argument(
        "--no-verify-crc",
        dest="verify_crc",
        action="store_false",
        help="skip CRC checks of records (faster, less safe)",
    )
    p_index.set_defaults(func=_cmd_index)

    p_diag = sub.add_parser("diagnose", help="find training problems in a log directory")
    p_diag.add_argument("logdir", metavar="LOGDIR", help="directory of event files")
    p_diag.add_argument("--json", action="store_true", help="print the report as JSON")
    p_diag.add_argument("--fail-on", default="error", choices=("info", "warning", "error", "never"),
                        help="exit with 1 when a finding is at least this severe (default: error)")
    p_diag.add_argument("--run", action="append", default=[], metavar="RUN", help="only this run (repeatable)")
    p_diag.add_argument("--config", metavar="FILE", default=None,
                        help="JSON file overriding tag patterns, thresholds, severities, disabled rules")
    p_diag.add_argument("--cache-dir", metavar="DIR", default=None, help="where the index is kept")
    p_diag.add_argument("--no-verify-crc", dest="verify_crc", action="store_false",
                        help="skip CRC checks of records (faster, less safe)")
    p_diag.set_defaults(func=_cmd_diagnose)

    store_opts = argparse.ArgumentParser(add_help=False)
    store_opts.add_argument("--cache-dir", metavar="DIR", default=None, help="where the index is kept")
    store_opts.add_argument("--no-verify-crc", dest="verify_crc", action="store_false",
                            help="skip CRC checks of records (faster, less safe)")
    choose = argparse.ArgumentParser(add_help=False)
    choose.add_argument("--run", action="append", default=[], metavar="PATTERN",
                        help="runs: a name, a glob or re:REGEX (repeatable; default: all)")
    x_help = "x axis: step, wall_time, relative or tag:NAME (default: step)"

    p_exp = sub.add_parser("export", parents=[choose, store_opts],
                           help="write scalar points to a Parquet, CSV or JSON Lines file")
    p_exp.add_argument("logdir", metavar="LOGDIR", help="directory of event files")
    p_exp.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="output file: .parquet/.pq, .csv or .jsonl/.ndjson")
    p_exp.add_argument("--format", default=None, help="parquet, csv or jsonl (default: from OUT's extension)")
    p_exp.add_argument("--tag", action="append", default=[], metavar="PATTERN",
                       help="scalar tags: a name, a glob or re:REGEX (repeatable; default: all)")
    p_exp.add_argument("--x", default="step", metavar="AXIS", help=x_help)
    p_exp.set_defaults(func=_cmd_export)

    p_q = sub.add_parser("query", help="print runs, tags, statistics or series of a log directory as JSON")
    p_q.add_argument("logdir", metavar="LOGDIR", help="directory of event files")
    qsub = p_q.add_subparsers(dest="what", metavar="SUBCOMMAND")
    qsub.required = True
    q = qsub.add_parser("runs", parents=[choose, store_opts], help="one row per run, with its status and last values")
    q.add_argument("--live-seconds", type=float, default=60.0,
                   help="live: written within this many seconds (default: the plugin's, 60)")
    q.add_argument("--stale-seconds", type=float, default=1800.0,
                   help="stale, not finished: written within this many seconds (default: the plugin's, 1800)")
    q.add_argument("--max-tags", type=int, default=50, help="last values of at most this many tags per run (50)")
    q = qsub.add_parser("tags", parents=[choose, store_opts], help="the matching tags of each run")
    q.add_argument("pattern", nargs="*", metavar="PATTERN", help="tags: a name, a glob or re:REGEX (default: all)")
    q.add_argument("--kind", default="scalars", choices=("scalars", "histograms", "tensors", "blobs"))
    for name, help_ in (("stats", "points, first/last step, last, min, max, NaN count per (run, tag)"),
                        ("series", "downsampled x and y lists per (run, tag)")):
        q = qsub.add_parser(name, parents=[choose, store_opts], help=help_)
        q.add_argument("--tag", action="append", required=True, metavar="PATTERN",
                       help="scalar tags: a name, a glob or re:REGEX (repeatable)")
        if name == "series":
            q.add_argument("--points", type=int, default=500, help="at most this many points per series "
                                                                   "(default 500, at most 100000)")
            q.add_argument("--x", default="step", metavar="AXIS", help=x_help)
    p_q.set_defaults(func=_cmd_query)
    return parser


def main(argv=None):
    """Run the ``tb-plus`` command line; returns the process exit code."""
    args = _build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `tb-plus diagnose ... | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
