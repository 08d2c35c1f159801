"""Allows `python -m globalmin <command>`."""

from globalmin.cli import console

console()
