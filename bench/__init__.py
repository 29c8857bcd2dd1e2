"""Benchmarks: `python -m bench` prints `name: value unit` lines (median and spread over repeated runs)."""
