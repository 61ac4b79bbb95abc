"""The warm worker: a server that preloads the test stack and runs every run in a new child.

Engine side (the server process and its children; may import pytest):
    server      the selector loop: commands in, events out, recycling itself
    supervisor  the children from fork to report: the run in progress, the
                standby, crash and timeout reports
    preload     what the server imports ahead of the runs, and the preload list
    fingerprint when the server's imports are stale (recycle)
    child       one run inside a child: pytest.main with the streamer
    standby     the gate that holds the next run's child before selection
    streamer    the pytest plugin that turns hooks into protocol events

Client side (the front-end process; standard library, light core and wire only):
    client      starts and supervises the server, queues runs, streams events
    processes   process plumbing shared with the server: fork or spawn with
                pipes, kill a group, reap, describe an exit

Their messages and arguments are `testmon_watch.wire` formats.
"""
