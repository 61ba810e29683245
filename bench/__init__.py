"""Benchmarks: `python -m bench` measures Scatterscribe against what a user would run instead."""
