"""Pure domain: payloads, aggregates, clinical rules and reference data. No I/O."""
