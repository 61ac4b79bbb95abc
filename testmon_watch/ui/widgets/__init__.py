"""The app's widgets: results tree, detail pane, status bar, coverage view."""
