"""Triage: the rules service. Rules versions in ``rulesets/``, built into durable-rules
rulesets by ``rules.py``, run by ``engine.py``, explained by ``domain.py``; served by
``api.py`` (HTTP) and ``activities.py`` (Temporal), one code path."""
