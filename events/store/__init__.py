"""Persistence: recorders, keys, mapper, hash chain, group commit, verification, the log."""
