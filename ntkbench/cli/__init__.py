"""The ``ntkbench`` command line: one module per command."""
