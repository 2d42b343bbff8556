"""The ``backbone`` command."""
