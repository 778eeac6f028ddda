"""Scores the diagnostics on the labelled corpus (demo/diagnostics_labels.py): which expected
findings were found at the right onset, which findings are false positives. Used by
tests/diagnostics/test_corpus.py and bench/bench_diagnostics.py.

    from diagnostics_score import score
    result = score(report.findings, LABELS)   # report = tb_plus.diagnostics.diagnose(logdir)
"""

from __future__ import annotations

SEVERE = ("warning", "error")


def _names_layer(finding, layer):
    for tag in finding.tags:
        last = tag.rsplit("/", 1)[-1]
        if last == layer or last.startswith(layer + "."):
            return True
    return False


def _matches(finding, e):
    if finding.rule != e["rule"]:
        return False
    if e.get("layer") and not _names_layer(finding, e["layer"]):
        return False
    if e.get("onset") is not None:
        windows = [(e["onset"], e.get("tolerance", 0))] + [tuple(o) for o in e.get("onsets", [])]
        return finding.step is not None and any(abs(finding.step - o) <= t for o, t in windows)
    return True


def score(findings, labels) -> dict:
    """{"expected": [(label, entry, matched finding or None, same-rule findings)], "false_positives":
    [(label, finding)], "rules": {rule: {"tp", "fn", "fp", "onset_errors": [...]}}}. Only findings of
    warning or error severity count as detections or false positives."""
    by_run = {}
    for f in findings:
        by_run.setdefault(f.run, []).append(f)
    expected, false_pos = [], []
    rules = {}

    def row(rule):
        return rules.setdefault(rule, {"tp": 0, "fn": 0, "fp": 0, "onset_errors": []})

    for name, lab in labels.items():
        mine = [f for r in lab.get("runs", [name]) for f in by_run.get(r, []) if f.severity in SEVERE]
        for e in lab["expect"]:
            same = [f for f in mine if f.rule == e["rule"]]
            hit = next((f for f in same if _matches(f, e)), None)
            expected.append((name, e, hit, same))
            r = row(e["rule"])
            if hit is not None:
                r["tp"] += 1
                if e.get("onset") is not None:
                    r["onset_errors"].append(min(abs(hit.step - o) for o in
                                                 [e["onset"]] + [o for o, _ in e.get("onsets", [])]))
            else:
                r["fn"] += 1
        ok = {e["rule"] for e in lab["expect"]} | set(lab.get("allow", []))
        for f in mine:
            if lab["healthy"] or f.rule not in ok:
                false_pos.append((name, f))
                row(f.rule)["fp"] += 1
    return {"expected": expected, "false_positives": false_pos, "rules": rules}


def table(result) -> list:
    """Rows (rule, expected, detected, false positives, precision, recall, max onset error)."""
    out = []
    for rule, r in sorted(result["rules"].items()):
        tp, fn, fp = r["tp"], r["fn"], r["fp"]
        precision = tp / (tp + fp) if tp + fp else None
        recall = tp / (tp + fn) if tp + fn else None
        out.append((rule, tp + fn, tp, fp, precision, recall, max(r["onset_errors"]) if r["onset_errors"] else None))
    return out
