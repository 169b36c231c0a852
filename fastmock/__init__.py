"""fastmock: a fast, faithful mock of the OpenAI HTTP API."""

__version__ = "0.1.0"
