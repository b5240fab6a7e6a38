"""``python -m aixpy`` runs the CLI."""

from aixpy.cli import main

main()
