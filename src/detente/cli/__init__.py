"""The ``detente`` command line (typer + rich)."""
