"""Command line entry point: ``tb-plus``.

Subcommands:
  index LOGDIR [--cache-dir DIR] [--no-verify-crc]
      Build or refresh the store's index for LOGDIR and print, per run, how many
      tags it holds, followed by any per-file problems.

Nothing heavy is imported at module import time; the store is imported only when
a subcommand runs.
"""

import argparse
import os
import sys


def _cmd_index(args):
    from tb_plus.store import Logdir

    if not os.path.isdir(args.logdir):
        sys.stderr.write("tb-plus index: not a directory: %r\n" % args.logdir)
        return 2
    kwargs = {"verify_crc": args.verify_crc}
    if args.cache_dir is not None:
        kwargs["cache_dir"] = args.cache_dir
    ld = Logdir(args.logdir, **kwargs)
    ld.refresh()

    runs = sorted(ld.runs())
    print("logdir: %s" % args.logdir)
    print("runs: %d" % len(runs))
    for run in runs:
        print("  %-40s %6d tags" % (run if run else ".", len(ld.tags(run))))
    problems = list(ld.problems())
    print("problems: %d" % len(problems))
    for problem in problems:
        print("  %s" % (problem,))
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
    return parser


def main(argv=None):
    """Run the ``tb-plus`` command line; returns the process exit code."""
    args = _build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
