"""Pure dependency engine: blocks, database, change detection, selection (no pytest/textual/watchdog)."""
