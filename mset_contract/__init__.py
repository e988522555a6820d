"""The shared contract of MSET Flow.

Everything that crosses a boundary between services, workflows and partner systems is
defined here once: the vocabularies, the Risk Assessment Tool, the indicator catalogue,
the workflow inputs and results. Nothing else is shared between services.
"""
