"""Benchmarks: each scenario measures the backbone and a raw baseline in the same run."""
