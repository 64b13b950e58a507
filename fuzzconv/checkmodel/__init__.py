"""Check one real model across every converter (`fuzzconv check-model`), and the ICSME 2022 study.

The parent side (spec parsing, data checks, tables, buckets, reports) imports no framework;
everything that touches torch or TensorFlow runs in a spawned worker (`worker.py`) or a fresh
measuring process (`memory.py`).
"""
