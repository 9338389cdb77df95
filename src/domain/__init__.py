"""The CSA Ledger domain: evidence, providers, assessments and the framework rules.

Pure Python: nothing here imports the web framework or the database.
"""
