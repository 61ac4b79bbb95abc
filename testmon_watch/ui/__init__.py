"""The Textual front end: app, screens, widgets, messages, app.tcss."""
