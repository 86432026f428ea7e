"""Structured logging: one JSON object per line, and quiet client libraries.

Prompts, completions and keys are never passed to a logger; request lines carry only ids, names,
numbers and outcomes.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import msgspec

REQUEST_LOGGER = "router.request"
_encode = msgspec.json.Encoder().encode
_NOISY = ("httpx", "httpcore", "aiohttp", "aiohttp.access", "aiohttp.client", "granian.access", "hpack")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encode(entry).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = getattr(record, "fields", None)
        extra = " ".join(f"{k}={v}" for k, v in fields.items()) if isinstance(fields, dict) else ""
        line = f"{stamp} {record.levelname.lower():7} {record.name}: {record.getMessage()} {extra}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route the router's logs to stderr in the chosen format; called once by the CLI."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def log_request(logger: logging.Logger, fields: dict[str, Any]) -> None:
    if logger.isEnabledFor(logging.INFO):
        logger.info("request", extra={"fields": fields})
