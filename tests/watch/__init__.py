"""Tests of testmon_watch.watch: filters, configuration and the change watcher."""
