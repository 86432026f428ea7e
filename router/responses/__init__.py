"""The Responses API's own format, shared by the HTTP surface (clients that speak it) and the OpenAI
adapter (upstreams that speak it): requests, Response objects, stream events, and their translations
to and from Chat Completions."""
