"""Local development: the embedded Redis and PostgreSQL servers and ``taskflow dev``, the whole stack on one machine."""
