# Stage report (src/globalmin/report.py): the HTML report and the Markdown results summary.

FIGURE_FILES = [f"{FIGURES_DIR}/{name}.png" for name in figure_names()]


rule report:
    input:
        runs=table("runs.csv"),
        tables=rules.aggregate.output.tables,
        claims=rules.claims.output,
        figures=FIGURE_FILES,
        paper_values="config/paper_values.yaml",
        fc_rates=rules.fc_theory.output.rates_html,
        beyond_ntk=rules.beyond_ntk.output.html,
        local_minima=rules.local_minima.output.html,
        code=code("report"),
    output:
        html="report/index.html",
        summary="report/summary.md",
        table=report("report/tables/table1.html", caption="../report/table1.rst", category="Recipe"),
        tables=[f"report/tables/{name}" for name in REPORT_TABLES if name != "table1.html"],
    log:
        "logs/report.log",
    conda:
        ENV
    params:
        tables=lambda w, input: str(Path(input.runs).parent),
        settings=as_json(
            {
                k: config[k]
                for k in ("model", "train", "recipe", "claims", "report", "experiment", "data", "width_sweep")
            }
        ),
    shell:
        "globalmin report --tables {params.tables} --claims {input.claims} --figures {input.figures}"
        " --study-tables fc_theory={input.fc_rates} beyond_ntk={input.beyond_ntk} local_minima={input.local_minima}"
        " --paper-values {input.paper_values} --config {params.settings:q} --out {output.html}"
        " --summary {output.summary} > {log} 2>&1"
