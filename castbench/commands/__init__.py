"""Subcommands of the ``castbench`` CLI, one module per command group."""
