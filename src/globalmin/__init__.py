"""globalmin: a reproducible replication of Kawaguchi & Sun's recipe A(base) and its neighbouring studies.

The library (docs/library.md) is `globalmin.api`; its names are importable from here too (`from globalmin import
Recipe`), loaded on first use, so that the pipeline's torch-free processes (the Snakefile's checks, the report) do
not import torch by importing the package.
"""

__version__ = "0.1.0"

PUBLIC = ("Recipe", "Certificate", "Layers", "RecipeError", "certify", "certify_model", "locate", "widen")


def __getattr__(name: str):
    if name in PUBLIC:
        from globalmin import api

        return getattr(api, name)
    raise AttributeError(f"module 'globalmin' has no attribute {name!r}")
