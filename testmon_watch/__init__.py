"""testmon-watch: run only the tests a change can affect, and watch them live."""

__version__ = "0.1.0.dev0"
