"""/runs: every run with its size, newest write, last step, live flag; and indexing progress."""

import dataclasses
import time

from tb_plus.routes import app, respond_json


def runs_impl(ld, live_seconds, now=None):
    now = time.time() if now is None else now
    infos = [ld.run_info(r) for r in ld.runs()]
    return {
        "runs": {
            "name": [i.name for i in infos],
            "last_step": [i.last_step for i in infos],
            "last_write": [i.last_write for i in infos],
            "size": [i.size for i in infos],
            "live": [now - i.last_write < live_seconds for i in infos],
            "tags": [i.scalar_tags for i in infos],
        },
        "progress": dataclasses.asdict(ld.progress()),
        "live_seconds": live_seconds,
    }


def route(plugin):
    def handler(request):
        return respond_json(request, runs_impl(plugin.require_logdir(), plugin.live_seconds))

    return app(handler)
