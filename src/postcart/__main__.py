"""``python -m postcart`` runs the command-line interface."""

from postcart.cli import main

main()
