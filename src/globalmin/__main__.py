"""Allows `python -m globalmin <command>`."""

from globalmin.cli import main

raise SystemExit(main())
