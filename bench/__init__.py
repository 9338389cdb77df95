"""Performance harness of CSA Ledger (`python -m bench.run`); figures in docs/performance.md."""
