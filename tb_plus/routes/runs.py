"""/runs: the run table. One row per run (columns): name, directory, first and newest write, newest
event, last step, size, files, tags, status (live, stale, finished), hyperparameters, diagnostics; and
the store's indexing progress. Everything comes from the index; no event file is read.

Status: from the files' modification time, unless the newest event's wall time is older than it by
stale_seconds or more (logs copied, synced or restored long after they were written: a 2021 run copied
today is not live): then from that wall time. A run is live only when both are recent; the lag between
writing an event and its file's modification time (writers flush every few minutes) and clock skew
between machines stay well under stale_seconds, so they never turn a running run stale."""

import dataclasses
import time

from tb_plus.routes import app, respond_json
from tb_plus.routes.hparams import hparams_columns


def run_columns(ld) -> dict:
    """The time-independent columns, rebuilt only when the index changed."""

    from tb_plus.diagnostics import run_kind

    def build():
        runs = ld.runs()
        infos = [ld.run_info(r) for r in runs]
        return {
            "runs": {
                "name": runs,
                "path": [i.path for i in infos],
                "first_write": [i.first_write for i in infos],
                "last_write": [i.last_write for i in infos],
                "last_event": [i.last_event for i in infos],
                "last_step": [i.last_step for i in infos],
                "size": [i.size for i in infos],
                "files": [i.files for i in infos],
                "tags": [i.scalar_tags for i in infos],
                "kind": [run_kind(ld, r) for r in runs],
            },
            "hparams": hparams_columns(ld, runs),
        }

    return ld.memo(("run_columns",), ld.generation, build)


def diagnostics_column(ld, runs) -> list:
    """Per run, the counts of its findings by severity when its diagnosis is current, else None
    (diagnoses run in the background after each refresh; this never computes one)."""
    from tb_plus.diagnostics import cached_counts

    return [cached_counts(ld, r, all_runs=runs) for r in runs]


def activity(last_write: float, last_event, stale_seconds: float) -> float:
    """When the run was last active: its files' modification time, or the newest event's wall time when
    that is older than the modification time by stale_seconds or more (copied or restored logs)."""
    if last_event is not None and last_write - last_event >= stale_seconds:
        return last_event
    return last_write


def status(now: float, last_write: float, live_seconds: float, stale_seconds: float, last_event=None) -> str:
    """live: active (see `activity`) within live_seconds; stale: not live, but active within
    stale_seconds (stopped recently: finished, crashed or hung); finished: idle for stale_seconds or more."""
    idle = now - activity(last_write, last_event, stale_seconds)
    if idle < live_seconds:
        return "live"
    return "stale" if idle < stale_seconds else "finished"


EMPTY = {"runs": {k: [] for k in ("name", "path", "first_write", "last_write", "last_event", "last_step", "size", "files",
                                  "tags", "kind", "diagnostics")}, "hparams": {}}


def runs_impl(ld, live_seconds, stale_seconds=None, now=None, wait=None):
    """The run table. `wait`: seconds to wait for the log directory's first index (None: as long as
    it takes); when it is not ready by then, an empty table with the indexing progress."""
    now = time.time() if now is None else now
    stale_seconds = max(live_seconds, stale_seconds if stale_seconds is not None else 30 * live_seconds)
    cols = run_columns(ld) if wait is None or ld.wait_ready(wait) else EMPTY
    table = dict(cols["runs"])
    st = [status(now, w, live_seconds, stale_seconds, e) for w, e in zip(table["last_write"], table["last_event"])]
    table["status"] = st
    table["diagnostics"] = diagnostics_column(ld, table["name"]) if table["name"] else []
    table["live"] = [s == "live" for s in st]
    rem = ld.remote
    storage = None if rem is None else {"url": rem.url, "requests": rem.requests(), "poll_seconds": rem.poll_seconds,
                                        "budget_per_hour": rem.budget}
    return {
        "storage": storage,
        "runs": table,
        "hparams": cols["hparams"],
        "progress": dataclasses.asdict(ld.progress()),
        "live_seconds": live_seconds,
        "stale_seconds": stale_seconds,
    }


def route(plugin):
    def handler(request):
        ld = plugin.logdir_for(request)
        # the operator's --logdir: wait for its first index, as TensorBoard does; a directory chosen in
        # the tab: answer within a second, with the progress, and let the tab poll
        wait = None if ld is plugin.logdir else 1.0
        return respond_json(request, runs_impl(ld, plugin.live_seconds, plugin.stale_seconds, wait=wait))

    return app(handler)
