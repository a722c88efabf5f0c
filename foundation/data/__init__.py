"""Data: file schemas, readers for the public formats, features, batching, cache and splits."""
