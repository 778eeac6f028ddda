"""Diagnostics: rules over a run's series that find training problems, say where they start and
suggest what to try.

    from tb_plus.diagnostics import diagnose
    report = diagnose(logdir)            # a tb_plus.store.Logdir; every run
    for f in report.findings: print(f.severity, f.run, f.title, f.step, f.message, f.prompt)

The rules are in rules.py (each documents its formula and defaults), what they look for and their
thresholds in config.py, how a run's series are found in rundata.py. A run's findings are computed
once per change of the run (Logdir.run_version) and configuration.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref

from tb_plus.diagnostics.config import LEVELS, Config, level
from tb_plus.diagnostics.rules import ORDER, RULES, Finding

_CACHE = weakref.WeakKeyDictionary()  # Logdir -> {(run, config key): (run version, [Finding])}
_LOCK = threading.Lock()


@dataclasses.dataclass
class Report:
    findings: list  # [Finding], most severe first, then by run and step
    runs: dict  # run -> {"error": n, "warning": n, "info": n}
    kinds: dict = dataclasses.field(default_factory=dict)  # run -> the kind it was taken for

    def worst(self) -> str | None:
        return max((f.severity for f in self.findings), key=level, default=None)

    def to_json(self) -> dict:
        return {"findings": [f.to_json() for f in self.findings], "runs": self.runs, "kinds": self.kinds}


def counts(findings) -> dict:
    c = {k: 0 for k in LEVELS}
    for f in findings:
        c[f.severity] += 1
    return c


def _version(ld, run, all_runs, cfg):
    """What a run's findings depend on: the run, the runs its hparams come from (its ancestors and
    direct sub-runs: add_hparams writes the class count into a sub-run, Keras's hparams are in the parent
    of <x>/train), and for a <x>/train run its siblings (validation)."""
    from tb_plus.query.hparams import hparam_sources

    if not all_runs:
        return ld.run_version(run), (), ()
    subs = tuple(ld.run_version(r) for r in hparam_sources(run, all_runs))
    parent, _, last = run.rpartition("/")
    if not cfg.matches("train_run", last):
        return ld.run_version(run), subs, ()
    siblings = tuple(ld.run_version(r) for r in all_runs if r != run and r.rpartition("/")[0] == parent)
    return ld.run_version(run), subs, siblings


def run_kind(ld, run: str, cfg: Config | None = None) -> str:
    """The kind of training a run was taken for (tb_plus.diagnostics.kinds: supervised, rl,
    lm_pretrain, finetune, unknown), from its scalar tags; remembered until its tags change."""
    from tb_plus.diagnostics import kinds

    cfg = cfg or Config()
    known = ld.memo(("run_kinds", cfg.key()), 0, dict)  # run -> (tags version, kind), filled as asked
    version = ld.tags_version(run)
    hit = known.get(run)
    if hit is not None and hit[0] == version:
        return hit[1]
    derived = ld.derived_tags(run)
    kind = kinds.classify([t for t in ld.tags(run) if t not in derived], cfg)[0]
    if len(known) > 100_000:
        known.clear()
    known[run] = (version, kind)
    return kind


def diagnose_run(ld, run: str, cfg: Config | None = None, all_runs=None) -> list:
    """The findings of one run (cached per run version and configuration). `all_runs`: the log
    directory's runs, to pair a Keras <x>/train run with its <x>/validation sibling."""
    from tb_plus.diagnostics import rules, rundata

    cfg = cfg or Config()
    key = (run, cfg.key())
    version = _version(ld, run, all_runs, cfg)
    with _LOCK:
        per = _CACHE.setdefault(ld, {})
        hit = per.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    findings = rules.apply(rundata.gather(ld, run, cfg, all_runs), cfg)
    with _LOCK:
        per[key] = (version, findings)
    return findings


def cached_counts(ld, run: str, cfg: Config | None = None, all_runs=None):
    """{"error": n, ...} of a run when its current findings are cached, else None (never computes)."""
    cfg = cfg or Config()
    with _LOCK:
        hit = _CACHE.get(ld, {}).get((run, cfg.key()))
    if hit is None or hit[0] != _version(ld, run, all_runs, cfg):
        return None
    from tb_plus.diagnostics import rules

    info = ld.run_info(run)
    late = rules.idle(run, info.last_write, None, info.last_step, cfg)
    return counts(hit[1] + ([late] if late is not None else []))


def diagnose(ld, runs=None, cfg: Config | None = None, now=None) -> Report:
    """Findings of `runs` (default: every run) of an indexed Logdir. `now`: the time the stalled
    rule measures idleness against (default: now)."""
    from tb_plus.diagnostics import rules

    cfg = cfg or Config()
    every = ld.runs()
    runs = every if runs is None else list(runs)
    findings, per, taken = [], {}, {}
    for run in runs:
        taken[run] = run_kind(ld, run, cfg)
        fs = list(diagnose_run(ld, run, cfg, every))
        info = ld.run_info(run)
        late = rules.idle(run, info.last_write, None, info.last_step, cfg, now)
        if late is not None:
            fs.append(late)
        per[run] = counts(fs)
        findings.extend(fs)
    findings.sort(key=lambda f: (-level(f.severity), f.run, f.step if f.step is not None else -1, ORDER.index(f.rule)))
    return Report(findings, per, taken)


def rules_json(cfg: Config | None = None) -> list:
    cfg = cfg or Config()
    return [{"name": r, "severity": cfg.severity.get(r, RULES[r].severity), "title": RULES[r].title,
             "description": RULES[r].description, "enabled": r not in cfg.disable} for r in ORDER]


__all__ = ["Config", "Finding", "Report", "diagnose", "diagnose_run", "run_kind", "cached_counts", "counts", "rules_json",
           "RULES", "LEVELS"]
