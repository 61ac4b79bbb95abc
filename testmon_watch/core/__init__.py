"""Pure dependency engine: blocks, database, change detection and selection.

Nothing here imports pytest, textual or watchdog.
"""
