"""Processes people run: the infrastructure control, the API, the relay, consumers and the CLI."""
