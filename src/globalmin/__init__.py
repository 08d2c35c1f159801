"""globalmin: a reproducible replication of Kawaguchi & Sun's recipe A(base) and its neighbouring studies."""

__version__ = "0.1.0"
