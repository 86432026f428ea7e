"""The router's own fault suite: a fault-injecting upstream, a load driver that classifies every answer,
and the assertions a chaos run must meet (``python -m tests.chaos.run``; a short run in pytest)."""
