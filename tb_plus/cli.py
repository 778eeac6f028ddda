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
