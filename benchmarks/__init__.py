"""Benchmarks for ir2i (run as modules, e.g. ``python -m benchmarks.rd``)."""
