"""Benchmarks for ir2i (run as modules, e.g. ``python -m ir2icodec.bench.rd``)."""
