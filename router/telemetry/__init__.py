"""Telemetry: structured logging (and, later, metrics) owned by the app."""
