"""Aggregation, figures and the HTML report and summary, from real tiny runs of every kind of condition."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import TINY_MODEL, TINY_TRAIN, fresh_python, train_base, train_recipe
from globalmin import aggregate, claims, report
from globalmin.figures import recipe as recipe_figures
from globalmin.runinfo import write_json

CLAIMS_CFG = {"equivalence_margin_pp": 0.5, "alpha": 0.05, "gap_fraction": 0.1, "gap_floor": 1e-6}


@pytest.fixture(scope="module")
def tables(digits_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("agg")
    metrics = []
    for condition, labels, augmented, seeds in (("standard", "dataset", False, (0, 1)),
                                                ("standard", "dataset", True, (0, 1)),
                                                ("random_labels", "random", False, (0,))):
        for seed in seeds:
            run = out / condition / f"{augmented}{seed}"
            train_base(digits_file, run / "base", seed, augmented, TINY_MODEL, TINY_TRAIN, 0.5,
                       condition={"name": condition, "labels": labels, "label_seed": 0})
            train_recipe(digits_file, run / "base" / "tau_state.pt", run / "recipe")
            metrics += [run / "base" / "metrics.json", run / "recipe" / "metrics.json"]
    aggregate.run(CLAIMS_CFG, {"metrics": metrics}, {"out_dir": out / "tables", "summary": out / "metrics.json",
                                                    "plots_dir": out / "plots"})
    return out


def test_table1_reads_the_standard_condition_only(tables):
    table = pd.read_csv(tables / "tables" / "table1.csv")
    assert list(table.Augmentation) == ["no", "yes"] and (table["# training points"] == 1297).all()
    runs = pd.read_csv(tables / "tables" / "runs.csv")
    for row in table.itertuples():
        certs = runs[(runs.algorithm == "recipe") & (runs.augment == (row.Augmentation == "yes"))
                     & (runs.condition == "standard")]
        k = int(certs.cert_full_rank.sum())
        assert f"({k}/2 runs; min σ_min {certs.cert_sigma_min.min():.2e};" in row[4] and "float32 rank" in row[4]
    assert table["base test error (%)"].str.match(r"^\d+\.\d\d \(\d+\.\d\d\)$").all()
    assert "\\begin{tabular}" in (tables / "tables" / "table1.tex").read_text()
    assert len(runs) == 10 and runs[runs.algorithm == "recipe"].cert_rank.notna().all()


def test_conditions_table_and_base_error_at_tau(tables):
    conditions = pd.read_csv(tables / "tables" / "conditions.csv")
    assert set(conditions.Condition) == {"standard", "random_labels"}
    noaug = conditions[(conditions.Condition == "random_labels")].iloc[0]
    runs = pd.read_csv(tables / "tables" / "runs.csv")
    run = runs[(runs.condition == "random_labels") & (runs.algorithm == "recipe")].iloc[0]
    expected = {"zero": "0 (1/1)", "undecided": "undecided (1/1)",
                "positive": f"{run.p2_infimum:.3g} > 0 (1/1)"}[run.p2_infimum_kind]  # KeyError on any other kind
    assert noaug["infimum (no weight decay)"] == expected and "→" in noaug["gap τ → T → horizon (median)"]
    augmented = conditions[conditions["Aug."] == "yes"].iloc[0]
    assert augmented["gap τ → T → horizon (median)"] == "–"  # not computed for augmented runs
    assert runs[runs.algorithm == "recipe"].base_train_error_at_tau.notna().all()
    ledger = claims.merge([tables / "tables" / "claims.json"])
    assert [c["id"] for c in ledger["claims"]] == ["R1", "R2", "R3", "R5", "R6"]
    assert [c["id"] for c in ledger["checks"]] == ["C1", "C2", "C3", "C4"]


def test_infimum_text_names_each_kind_with_its_count():
    group = pd.DataFrame({"p2_infimum_kind": ["zero", "positive", "positive", "undecided", None],
                          "p2_infimum": [0.0, 0.5, 0.7, None, None]})
    assert aggregate.infimum_text(group) == "0.6 > 0 (2/5); undecided (1/5); 0 (1/5)"
    assert aggregate.infimum_text(group.iloc[:1]) == "0 (1/1)"
    assert aggregate.infimum_text(group.iloc[4:]) == "–"  # no unregularised problem solved (augmented runs)


def test_no_runs_is_an_error():
    with pytest.raises(ValueError, match="no runs"):
        aggregate.collect_runs([])


def test_figures_report_and_summary_render(tables):
    figs = tables / "report" / "figures"
    written = recipe_figures.run({}, {"inputs": [f"runs={tables / 'tables' / 'runs.csv'}",
                                                 f"curves={tables / 'tables' / 'curves.csv'}"]}, {"out_dir": figs})
    assert len(written) == 8 and all(p.stat().st_size > 1000 for p in written)
    write_json(tables / "claims.json", claims.merge([tables / "tables" / "claims.json"]))
    paper = tables / "paper_values.yaml"
    paper.write_text("values: []\n")
    cfg = {"recipe": {"tau_fraction": 0.9}, "model": {"wide_activation": "tanh", "widths": [64, 128, 256, 512]},
           "train": {"lr": 0.01, "epochs": {"plain": 30, "augmented": 60}}, "report": {"title": "T<1>"}}
    report.run(cfg, {"tables": tables / "tables", "claims": tables / "claims.json",
                     "figures": [str(p) for p in written if p.suffix == ".png"], "paper_values": paper},
               {"html": tables / "report" / "index.html", "summary": tables / "report" / "summary.md"})
    html = (tables / "report" / "index.html").read_text()
    assert "T&lt;1&gt;" in html  # autoescaped
    assert 'src="figures/gap.png"' in html and "R1" in html and "Instrument checks" in html
    assert "Generated" not in html and "wall" not in html  # no time stamps or timings: byte-stable
    summary = (tables / "report" / "summary.md").read_text()
    assert summary.startswith("# T<1>") and "| digits | sgd | 1297 |" in summary and "**C1**" in summary


@pytest.mark.parametrize("key, value, source", [
    ("train.lr", 0.01, "authors' related code"),
    ("train.epochs", {"plain": 30, "augmented": 60}, "this project's choice: fewer epochs for a CPU"),
    ("recipe.tau_fraction", 0.9, "this project's choice: the reconstruction's default reading"),
    ("model.widths", [64, 128, 256, 512], "authors' related code"),
])
def test_every_value_names_its_source(key, value, source):
    section, name = key.split(".")
    rows = {r["key"]: r for r in report.provenance({section: {name: value}}, [])}
    assert rows[key]["source"].startswith(source)
    assert "paper" not in rows[key]["source"].split(":")[0]  # nothing is the paper's without a recorded source
    recorded = [{"key": key, "value": value, "what": key, "source": "Table 2 of the paper"}]
    assert report.provenance({section: {name: value}}, recorded)[[r["key"] for r in
                                                                  report.provenance({}, [])].index(key)][
        "source"] == "paper (Table 2 of the paper)"


def test_the_report_records_the_installed_torch_without_importing_it():
    code = ("import importlib.metadata, sys\n"
            "from globalmin.report import machine\n"
            "record = machine()\n"
            "assert record['torch'] == importlib.metadata.version('torch'), record\n"
            "print('torch' in sys.modules)\n")
    assert fresh_python(code) == "False"
