"""The clinical HTTP API (FastAPI): commands into the store, reads from the projections."""
