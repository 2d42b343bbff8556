"""The write side: the event contract, clinical aggregates and rules, and the event store."""
