"""The `nas` command line: one module per command group (arch, train, study)."""

from nas.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
