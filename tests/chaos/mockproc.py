"""The simulated providers as a process of their own, with a request log long enough for a chaos run:
``python -m tests.chaos.mockproc --port N [--history K]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from router.mock import MockState, serve_forever


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--history", type=int, default=200_000)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever("127.0.0.1", args.port, MockState(history=args.history)))


if __name__ == "__main__":
    main()
