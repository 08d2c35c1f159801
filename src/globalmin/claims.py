"""The claims ledger: claims of the papers with verdicts, and instrument checks kept apart from them.

A *claim* is a statement of one of the papers; its rule can give each verdict it names (supported, not
supported, inconclusive), and a unit test builds inputs for each. A *check* is a statement that holds by
construction when the instruments work (an identity, a negative control): it passes or fails, and it is
reported beside the claims, never counted as support for a paper. Each stage writes its records to its own
fragment; `run` merges the fragments into results/claims.json.

Fragments instead of appending to one file: Snakemake jobs run in parallel and a file appended to by
several jobs is neither atomic nor tracked; merging keeps each study's records owned by one rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from globalmin.runinfo import read_json, write_json

VERDICTS = ("supported", "not supported", "inconclusive")
CHECK_RESULTS = ("passed", "failed")
RECIPE = "Kawaguchi & Sun, A Recipe for Global Convergence Guarantee in Deep Neural Networks (AAAI 2021)"


def make_claim(claim_id: str, statement: str, source: str, evidence: list[str], measured: dict[str, Any],
               verdict: str, reconstructed: bool, rule: str) -> dict[str, Any]:
    """One claim record; `rule` says how the verdict follows from the measured values, `reconstructed` whether
    the statement rests on a reconstruction of the paper (docs/science.md)."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    return {"kind": "claim", "id": claim_id, "statement": statement, "source": source, "evidence": evidence,
            "measured": measured, "verdict": verdict, "reconstructed": reconstructed, "rule": rule}


def make_check(check_id: str, statement: str, evidence: list[str], measured: dict[str, Any], passed: bool,
               rule: str) -> dict[str, Any]:
    """One instrument check: a statement true by construction when the instruments work."""
    return {"kind": "check", "id": check_id, "statement": statement, "evidence": evidence, "measured": measured,
            "verdict": "passed" if passed else "failed", "rule": rule}


def overall(verdicts: list[str]) -> str:
    """One verdict from several parts: not supported if any part is, supported if all are, else inconclusive."""
    if not verdicts:
        return "inconclusive"
    if "not supported" in verdicts:
        return "not supported"
    return "supported" if all(v == "supported" for v in verdicts) else "inconclusive"


def equivalence(differences: list[float] | np.ndarray, margin: float, alpha: float = 0.05) -> dict[str, Any]:
    """Paired equivalence by two one-sided tests (TOST) at level alpha: the (1 - 2 alpha) confidence interval of
    the mean difference. 'supported' when it lies inside (-margin, margin); 'not supported' when it lies wholly
    outside [-margin, margin] (a difference beyond the margin is established); otherwise 'inconclusive'."""
    from scipy import stats  # here, not at the top: scipy.stats costs the stages that only write records a second

    diff = np.asarray(differences, dtype=float)
    k = len(diff)
    if k < 2:
        return {"seeds": k, "mean": float(diff.mean()) if k else None, "ci": None, "verdict": "inconclusive"}
    mean, sd = float(diff.mean()), float(diff.std(ddof=1))
    half = float(stats.t.ppf(1 - alpha, k - 1) * sd / np.sqrt(k))
    low, high = mean - half, mean + half
    verdict = ("supported" if -margin < low and high < margin else
               "not supported" if low > margin or high < -margin else "inconclusive")
    # paired t-test against 0, for context: a difference can be significant yet inside the margin
    p_zero = float(stats.ttest_1samp(diff, 0.0).pvalue) if sd > 0 else (1.0 if mean == 0 else 0.0)
    return {"seeds": k, "mean": mean, "ci": [low, high], "ci_level": 1 - 2 * alpha, "margin": margin,
            "p_value_difference": p_zero, "verdict": verdict}


def write_fragment(path: str | Path, stage: str, records: list[dict[str, Any]]) -> Path:
    """Write one stage's claims and checks."""
    return write_json(path, {"stage": stage, "records": records})


def merge(fragment_paths: list[str | Path]) -> dict[str, Any]:
    """Gather fragments into one ledger (claims and checks apart), refusing duplicate ids."""
    records, seen = [], set()
    for path in fragment_paths:
        for record in read_json(path)["records"]:
            if record["id"] in seen:
                raise ValueError(f"claim or check id {record['id']} appears twice (second time in {path})")
            seen.add(record["id"])
            records.append(record)
    claims = [r for r in records if r["kind"] == "claim"]
    checks = [r for r in records if r["kind"] == "check"]
    return {"claims": claims, "checks": checks,
            "summary": {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS},
            "checks_summary": {v: sum(c["verdict"] == v for c in checks) for v in CHECK_RESULTS}}


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """Merge inputs['fragments'] into outputs['out']."""
    ledger = merge(inputs["fragments"])
    write_json(outputs["out"], ledger)
    return ledger
