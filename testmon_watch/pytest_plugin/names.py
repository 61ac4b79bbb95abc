"""The names under which our pytest plugins register, and the key of our data in reports.

Other code finds these plugins by name (`config.pluginmanager.get_plugin`):
the plugin waits on the standby child's gate, the fast path checks that no
gate is present. (The warm worker reads the selection through
`selection_view.selection_of(config)`, not through a plugin.) The names are
written here once.
"""

from __future__ import annotations

SESSION_PLUGIN = "testmon_watch_session"  # pytest_plugin.planning.SelectionHooks
RESULTS_PLUGIN = "testmon_watch_results"  # pytest_plugin.results.ResultHooks
RECORDING_PLUGIN = "testmon_watch_recording"  # pytest_plugin.recording.RecordingHooks
WINDOWS_PLUGIN = "testmon_watch_windows"  # pytest_plugin.windows.TracingWindows (below 3.12)
XDIST_PLUGIN = "testmon_watch_xdist"  # pytest_plugin.plugin.XdistControllerHooks
# The warm worker's standby child (worker.standby.RunGate): it holds the run at a
# gate until told what to run, and selection waits for it.
GATE_PLUGIN = "testmon_watch_gate"
# The attribute of a TestReport, and the key of xdist's `workeroutput`, that carry
# a recording (see wire.xdist).
PAYLOAD_KEY = "testmon_watch"
