"""Holds the `sitecustomize` that child interpreters find on PYTHONPATH while recording."""
