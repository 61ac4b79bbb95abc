"""Recording what a test touches: executed lines, imports, file reads."""
