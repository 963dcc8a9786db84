"""What ops look at: the namespace's streams, their consumer groups and the entries still
pending, read from Redis and shaped for people and scripts (``taskflow streams``)."""
