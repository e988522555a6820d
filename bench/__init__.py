"""Benchmarks, one package per service."""
