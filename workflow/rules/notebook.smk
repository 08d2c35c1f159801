# Stage notebook (src/globalmin/notebook.py): the exploration notebook executed with this run's outputs.


rule notebook:
    input:
        runs=table("runs.csv"),
        claims=rules.claims.output,
        # the notebook recomputes the spectrum of one standard A(base) run's features from its model
        models=[f"{folder}/model.pt" for folder in run_folders(["recipe"], conditions=["standard"], ablation=False)],
        data=[prepared(d) for d in config["experiment"]["datasets"]],
        code=code("notebook"),
    output:
        "report/explore.ipynb",
    log:
        "logs/notebook.log",
    conda:
        ENV
    params:
        tables=lambda w, input: str(Path(input.runs).parent),
        runs_dir=lambda w: RUNS,
        data_dir=lambda w, input: str(Path(input.data[0]).parent),
    shell:
        "globalmin notebook --tables {params.tables} --claims {input.claims} --runs-dir {params.runs_dir}"
        " --data-dir {params.data_dir} --out {output} > {log} 2>&1"
