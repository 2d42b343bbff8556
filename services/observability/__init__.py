"""Structured logging and metrics shared by every process."""
