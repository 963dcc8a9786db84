"""The PostgreSQL event archive as readers outside the projector see it: the name its
checkpoints are kept under. The archive holds every event up to a partition's checkpoint
(the projector commits both in one transaction), whatever Redis still holds."""

from __future__ import annotations

from typing import Final

# projection_checkpoints.projection of the projector that writes the archive.
PROJECTION: Final = "main"
