"""The `pytest --testmon` plugin: options, selection at collection, recording hooks."""
