"""``python -m services.cli`` runs the ``backbone`` command."""

from services.cli.main import main

main()
