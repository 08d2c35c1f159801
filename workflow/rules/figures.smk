# Stage figures (src/globalmin/figures/): one rule per figure module, each drawing from the tables of its stage.


rule figure_recipe:
    input:
        runs=table("runs.csv"),
        curves=table("curves.csv"),
        code=code("figure-recipe"),
    output:
        figure_files("recipe", category="Recipe"),
    log:
        "logs/figures/recipe.log",
    conda:
        ENV
    params:
        out_dir=out_dir,
    shell:
        "globalmin figure-recipe --inputs runs={input.runs} curves={input.curves} --out-dir {params.out_dir} > {log} 2>&1"


rule figure_sweep:
    input:
        runs=table("runs.csv"),
        sweep=table("sweep.csv"),
        horizon=table("horizon.csv"),
        code=code("figure-sweep"),
    output:
        figure_files("sweep", category="Recipe"),
    log:
        "logs/figures/sweep.log",
    conda:
        ENV
    params:
        out_dir=out_dir,
    shell:
        "globalmin figure-sweep --inputs runs={input.runs} sweep={input.sweep} horizon={input.horizon}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule figure_fc_theory:
    input:
        runs=rules.fc_theory.output.runs,
        code=code("figure-fc-theory"),
    output:
        figure_files("fc-theory", category="Expressivity"),
    log:
        "logs/figures/fc_theory.log",
    conda:
        ENV
    params:
        out_dir=out_dir,
    shell:
        "globalmin figure-fc-theory --inputs runs={input.runs} --out-dir {params.out_dir} > {log} 2>&1"


rule figure_ntk:
    input:
        runs=rules.ntk.output.runs,
        code=code("figure-ntk"),
    output:
        figure_files("ntk", category="NTK regime"),
    log:
        "logs/figures/ntk.log",
    conda:
        ENV
    params:
        settings=as_json({"depth": config["ntk"]["depth"]}),
        out_dir=out_dir,
    shell:
        "globalmin figure-ntk --inputs runs={input.runs} --config {params.settings:q} --out-dir {params.out_dir} > {log} 2>&1"


rule figure_beyond_ntk:
    input:
        resnet=rules.beyond_ntk.output.runs,
        ntk=rules.ntk.output.runs,
        code=code("figure-beyond-ntk"),
    output:
        figure_files("beyond-ntk", category="NTK regime"),
    log:
        "logs/figures/beyond_ntk.log",
    conda:
        ENV
    params:
        settings=as_json({"depth": config["ntk"]["depth"]}),
        out_dir=out_dir,
    shell:
        "globalmin figure-beyond-ntk --inputs resnet={input.resnet} ntk={input.ntk} --config {params.settings:q}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule figure_local_minima:
    input:
        runs=rules.local_minima.output.runs,
        code=code("figure-local-minima"),
    output:
        figure_files("local-minima", category="Local minima"),
    log:
        "logs/figures/local_minima.log",
    conda:
        ENV
    params:
        out_dir=out_dir,
    shell:
        "globalmin figure-local-minima --inputs runs={input.runs} --out-dir {params.out_dir} > {log} 2>&1"
