# Stage figures (src/globalmin/figures/): one rule per figure module, each drawing from the tables of its stage.



rule figure_recipe:
    input:
        runs=rules.aggregate.output.runs,
        curves=rules.aggregate.output.curves,
        code=code("figure-recipe"),
    output:
        figure_files("curves", "phase2", "gap", "sigma_min", category="Recipe"),
    params:
        out_dir=out_dir,
    log:
        "logs/figures/recipe.log",
    conda:
        ENV
    shell:
        "globalmin figure-recipe --inputs runs={input.runs} curves={input.curves} --out-dir {params.out_dir} > {log} 2>&1"


rule figure_fc_theory:
    input:
        runs=rules.fc_theory.output.runs,
        code=code("figure-fc-theory"),
    output:
        figure_files("fc_theory", category="Expressivity"),
    params:
        out_dir=out_dir,
    log:
        "logs/figures/fc_theory.log",
    conda:
        ENV
    shell:
        "globalmin figure-fc-theory --inputs runs={input.runs} --out-dir {params.out_dir} > {log} 2>&1"


rule figure_ntk:
    input:
        runs=rules.ntk.output.runs,
        code=code("figure-ntk"),
    output:
        figure_files("ntk", category="NTK regime"),
    params:
        settings=as_json({"depth": config["ntk"]["depth"]}),
        out_dir=out_dir,
    log:
        "logs/figures/ntk.log",
    conda:
        ENV
    shell:
        "globalmin figure-ntk --inputs runs={input.runs} --config {params.settings:q} --out-dir {params.out_dir} > {log} 2>&1"


rule figure_beyond_ntk:
    input:
        resnet=rules.beyond_ntk.output.runs,
        ntk=rules.ntk.output.runs,
        code=code("figure-beyond-ntk"),
    output:
        figure_files("beyond_ntk", category="NTK regime"),
    params:
        settings=as_json({"depth": config["ntk"]["depth"]}),
        out_dir=out_dir,
    log:
        "logs/figures/beyond_ntk.log",
    conda:
        ENV
    shell:
        "globalmin figure-beyond-ntk --inputs resnet={input.resnet} ntk={input.ntk} --config {params.settings:q}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule figure_local_minima:
    input:
        runs=rules.local_minima.output.runs,
        code=code("figure-local-minima"),
    output:
        figure_files("local_minima", "local_minima_gap", category="Local minima"),
    params:
        out_dir=out_dir,
    log:
        "logs/figures/local_minima.log",
    conda:
        ENV
    shell:
        "globalmin figure-local-minima --inputs runs={input.runs} --out-dir {params.out_dir} > {log} 2>&1"
