"""The claims ledger and the equivalence test the comparability claims use (the Recipe's claims are tested in
test_recipe_claims.py)."""

from __future__ import annotations

import numpy as np
import pytest

from globalmin import claims


@pytest.mark.parametrize("diffs, verdict", [
    ([0.0, 0.1, -0.1, 0.05, 0.0], "supported"),      # CI well inside +-0.5
    ([2.0, 2.2, 1.9, 2.1, 2.0], "not supported"),    # CI wholly above +0.5: a difference beyond the margin
    ([0.2, 1.4, -0.6, 0.9, 0.1], "inconclusive"),    # CI straddles the margin
    ([0.1], "inconclusive"),                         # one seed: no interval
])
def test_equivalence_gives_each_verdict(diffs, verdict):
    result = claims.equivalence(np.array(diffs), margin=0.5, alpha=0.05)
    assert result["verdict"] == verdict
    if len(diffs) > 1:
        low, high = result["ci"]
        assert low < result["mean"] < high and result["ci_level"] == pytest.approx(0.9)


def test_a_significant_difference_inside_the_margin_is_still_equivalent():
    # +0.16 points, paired p < 0.05: significant, but shown to lie within +-0.5
    result = claims.equivalence(np.array([0.14, 0.18, 0.16, 0.15, 0.17]), margin=0.5)
    assert result["p_value_difference"] < 0.05 and result["verdict"] == "supported"


def test_overall_combines_parts():
    assert claims.overall(["supported", "supported"]) == "supported"
    assert claims.overall(["supported", "inconclusive"]) == "inconclusive"
    assert claims.overall(["inconclusive", "not supported"]) == "not supported"
    assert claims.overall([]) == "inconclusive"


def test_merge_keeps_checks_apart_and_refuses_duplicate_ids(tmp_path):
    claim = claims.make_claim("R1", "s", "src", [], {}, "supported", False, "rule")
    check = claims.make_check("C1", "s", [], {}, True, "rule")
    claims.write_fragment(tmp_path / "a.json", "a", [claim, check])
    claims.write_fragment(tmp_path / "b.json", "b", [{**claim, "id": "X", "verdict": "not supported"}])
    merged = claims.merge([tmp_path / "a.json", tmp_path / "b.json"])
    assert [c["id"] for c in merged["claims"]] == ["R1", "X"] and [c["id"] for c in merged["checks"]] == ["C1"]
    assert merged["summary"] == {"supported": 1, "not supported": 1, "inconclusive": 0}
    assert merged["checks_summary"] == {"passed": 1, "failed": 0}
    with pytest.raises(ValueError, match="R1 appears twice"):
        claims.merge([tmp_path / "a.json", tmp_path / "a.json"])
    with pytest.raises(ValueError, match="verdict"):
        claims.make_claim("R9", "s", "src", [], {}, "probably", False, "rule")
