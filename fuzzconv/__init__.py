"""fuzzconv: a differential fuzzer for deep-learning model converters."""

__version__ = "0.1.0"
