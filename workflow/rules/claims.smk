# Stage claims (src/globalmin/claims.py): every stage's claims fragment merged into one ledger.


rule claims:
    input:
        fragments=[
            rules.aggregate.output.claims,
            rules.fc_theory.output.claims,
            rules.ntk.output.claims,
            rules.beyond_ntk.output.claims,
            rules.local_minima.output.claims,
        ],
        code=code("claims"),
    output:
        report("results/claims.json", caption="../report/claims.rst", category="Claims"),
    log:
        "logs/claims.log",
    conda:
        ENV
    shell:
        "globalmin claims --fragments {input.fragments} --out {output} > {log} 2>&1"
