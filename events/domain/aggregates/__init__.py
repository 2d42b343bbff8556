"""Clinical aggregates: immutable state, pure ``evolve`` and pure decisions, one module per area.

Decisions never read the clock or make ids: the application passes ``now`` and ids in,
so replay and tests are deterministic.
"""
