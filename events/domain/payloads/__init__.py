"""Payload models of the event contract, one module per clinical area."""
