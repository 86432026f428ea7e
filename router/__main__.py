"""Command line: ``serve``, ``check``, ``mock`` and ``demo``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from router import __version__
from router.settings import DEFAULT_CATALOG, Settings, SettingsError

EXIT_BAD_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m router",
        description="An LLM router: the OpenAI API to clients, each provider's own API behind it.",
    )
    parser.add_argument("--version", action="version", version=f"router {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the router (Granian, ASGI)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; ROUTER_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8080; ROUTER_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1; ROUTER_WORKERS)")
    _catalog_flag(serve)
    _log_flags(serve)

    check = commands.add_parser("check", help="validate a catalog and summarise it")
    _catalog_flag(check)

    explain = commands.add_parser("explain", help="dry-run a routing decision: ranked candidates, exclusions")
    explain.add_argument("--model", required=True, help="model id, alias or strategy keyword")
    explain.add_argument("--prompt", default="Hello", help="user message text")
    explain.add_argument("--max-tokens", type=int, help="output limit of the request")
    explain.add_argument("--tools", action="store_true", help="the request carries a tool")
    explain.add_argument("--stream", action="store_true", help="the request streams")
    _catalog_flag(explain)

    mock = commands.add_parser("mock", help="run the simulated providers alone (for tools to point at)")
    mock.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    mock.add_argument("--port", type=int, default=9090, help="port (default 9090; 0 picks a free one)")

    demo = commands.add_parser("demo", help="run the simulated providers and the router pointed at them")
    demo.add_argument("--port", type=int, default=8080, help="router port (default 8080)")
    demo.add_argument("--host", default="127.0.0.1", help="router address (default 127.0.0.1)")
    _catalog_flag(demo)
    _log_flags(demo)
    return parser


def _catalog_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", help=f"catalog file (default {DEFAULT_CATALOG}; ROUTER_CATALOG)")


def _log_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="ROUTER_LOG_LEVEL")
    parser.add_argument("--log-format", choices=["json", "text"], help="ROUTER_LOG_FORMAT")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            catalog_path=getattr(args, "catalog", None),
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            workers=getattr(args, "workers", None),
            log_level=getattr(args, "log_level", None),
            log_format=getattr(args, "log_format", None),
        )
    except SettingsError as exc:
        print(f"router: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    from router import cli

    try:
        if args.command == "explain":
            return cli.explain(settings, args.model, args.prompt, args.max_tokens, args.tools, args.stream)
        command = {"serve": cli.serve, "check": cli.check, "mock": cli.mock, "demo": cli.demo}[args.command]
        return command(settings)
    except BrokenPipeError:  # output piped into a reader that stopped early (| head)
        # Python flushes stdout again at exit, into the same closed pipe: point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
