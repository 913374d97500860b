"""gradcore's benchmark scripts; ``python -m benchmarks`` runs the CPU benchmarks (benchmarks/run.py)."""
