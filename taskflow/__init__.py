"""TaskFlow: event-sourced background tasks and email campaigns on Redis Streams."""

__version__ = "0.1.0"
