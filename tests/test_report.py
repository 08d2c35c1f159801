"""Aggregation, figures and the HTML report, from real tiny runs."""

from __future__ import annotations

import pandas as pd
import pytest

from globalmin import aggregate, claims, figures, report, train


@pytest.fixture(scope="module")
def tables(digits_file, tmp_path_factory):
    from conftest import RECIPE, TINY_MODEL, TINY_TRAIN

    out = tmp_path_factory.mktemp("agg")
    metrics = []
    for augmented in (False, True):
        for seed in (0, 1):
            run = out / f"{augmented}{seed}"
            train.train_base(digits_file, run / "base", seed, augmented, TINY_MODEL, TINY_TRAIN, 0.5)
            train.train_recipe(digits_file, run / "base" / "tau_state.pt", run / "recipe", RECIPE)
            metrics += [run / "base" / "metrics.json", run / "recipe" / "metrics.json"]
    runs, curves = aggregate.collect_runs(metrics)
    aggregate.write_tables(runs, curves, out / "tables")
    return out


def test_table1_has_one_row_per_dataset_and_augmentation(tables):
    table = pd.read_csv(tables / "tables" / "table1.csv")
    assert list(table.Augmentation) == ["no", "yes"] and (table["# training points"] == 1297).all()
    runs = pd.read_csv(tables / "tables" / "runs.csv")
    for row in table.itertuples():
        certs = runs[(runs.algorithm == "recipe") & (runs.augment == (row.Augmentation == "yes"))]
        k = int(certs.cert_full_rank.sum())
        assert f"({k}/2 runs; min σ_min {certs.cert_sigma_min.min():.2e})" in row[3]
        assert row[3].startswith("verified" if k == 2 else "NOT verified")
    assert table["base test error (%)"].str.match(r"^\d+\.\d\d \(\d+\.\d\d\)$").all()
    assert "\\begin{tabular}" in (tables / "tables" / "table1.tex").read_text()
    assert len(runs) == 8 and runs[runs.algorithm == "recipe"].cert_rank.notna().all()


def test_no_runs_is_an_error():
    with pytest.raises(ValueError, match="no runs"):
        aggregate.collect_runs([])


def test_figures_and_report_render(tables):
    runs = pd.read_csv(tables / "tables" / "runs.csv")
    curves = pd.read_csv(tables / "tables" / "curves.csv")
    figs = tables / "report" / "figures"
    written = figures.plot_curves(curves, figs / "curves.png") + figures.plot_sigma_min(runs, figs / "sigma_min.png")
    assert all(p.stat().st_size > 1000 for p in written) and {p.suffix for p in written} == {".png", ".pdf"}
    fragment = claims.write_fragment(tables / "recipe.json", "recipe", claims.recipe_claims(
        runs, curves, {"comparable_tolerance": 1.0, "monotone_rel_tol": 0.01}, []))
    from globalmin.runinfo import write_json
    write_json(tables / "claims.json", claims.merge([fragment]))
    cfg = {"recipe": {"tau_fraction": 0.5}, "model": {"wide_activation": "tanh"}, "report": {"title": "T<1>"}}
    html = report.render(tables / "tables", tables / "claims.json", [figs / "curves.png", figs / "sigma_min.png"],
                         tables / "report" / "index.html", cfg, None).read_text()
    assert "T&lt;1&gt;" in html  # autoescaped
    assert 'src="figures/curves.png"' in html and "R1" in html and "R3" in html
    assert html.count("seed0/recipe") + html.count("seed1/recipe") == 4  # one certificate row per A(base) run
    assert "<code>recipe.tau_fraction</code>" in html and "differs: the paper used 0.9" in html
    assert "as in the paper (reconstructed reading)" not in html  # nothing in cfg matches the paper here
    assert (tables / "report" / "tables" / "table1.tex").exists()
