"""``python -m detente`` runs the command line."""

from .cli.main import run

run()
