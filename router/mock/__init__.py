"""Fake LLM providers on a real socket, with scriptable speed and faults, for demos, tests and benchmarks."""

from router.mock.faults import Behaviour, FaultStore, MockState, PendingFault
from router.mock.faultspec import Fault
from router.mock.requestlog import RecordedRequest
from router.mock.server import MockServer, build_mock_app, serve_forever

__all__ = [
    "Behaviour",
    "Fault",
    "FaultStore",
    "MockServer",
    "MockState",
    "PendingFault",
    "RecordedRequest",
    "build_mock_app",
    "serve_forever",
]
