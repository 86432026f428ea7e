"""Multi-provider LLM router that speaks the OpenAI API; importing it has no side effects."""

__version__ = "0.1.0"
