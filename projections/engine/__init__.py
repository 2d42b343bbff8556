"""The projection engine: runner, marks, positions, rebuild, dead letters, replay."""
