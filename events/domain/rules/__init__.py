"""Pure clinical rules (units, result flags, vital signs, medication alerts) over packaged data."""
