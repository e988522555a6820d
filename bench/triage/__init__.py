"""Triage benchmark: ``python -m bench.triage.run``."""
