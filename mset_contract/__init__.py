"""The shared contract of MSET Flow.

Everything that crosses a boundary between services, workflows and partner systems is
defined here once: the vocabularies, the Risk Assessment Tool, the indicator catalogue,
the workflow inputs and results: models, vocabularies and names only. How a service
process runs (web, database, Temporal and identity clients) is shared in ``mset_platform``.
"""
