"""The HTTP API (FastAPI). Routers are thin: they call the ledger service."""
