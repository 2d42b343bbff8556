"""The benchmark scenarios: append, relay, end-to-end latency, chart read, rebuild, scale."""
