"""Command-line sub-commands, one module each (see engine/cli.py)."""
