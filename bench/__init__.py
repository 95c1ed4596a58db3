"""Benchmarks and the chaos run: commands anyone can run against a stack they start themselves."""
