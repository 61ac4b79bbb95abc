"""The app's screens beyond the main one: help and coverage."""
