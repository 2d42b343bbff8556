"""The error the infrastructure commands raise with a message meant for a person."""

from __future__ import annotations


class InfraError(Exception):
    """Something the operator has to fix; the message says what and how."""
