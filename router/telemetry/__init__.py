"""Telemetry: structured logging, metrics and tracing, owned by the app and fed one request record."""
