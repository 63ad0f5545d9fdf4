"""Benchmarks: `make bench` (python -m bench) prints figures for production and embedded mode."""
