"""Lua scripts registered by the one process that calls them, from the ``lua/`` folder
beside that process's code (``taskflow/worker/lua/``, ...).

Every key reaches a script through ``KEYS`` and all keys of one call share a ``{p}`` hash
tag, so the scripts run unchanged on Redis Cluster (ARCHITECTURE invariant 7).
"""

from __future__ import annotations

from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from taskflow.streams.keyspace import Keyspace


class LuaScripts:
    """The scripts one process registered on its Redis client."""

    def __init__(self, redis: Redis, keyspace: Keyspace, package: str) -> None:
        self.redis = redis
        self.keyspace = keyspace
        self._package = package
        self._registered: list[AsyncScript] = []

    def register(self, name: str) -> AsyncScript:
        source = files(self._package).joinpath("lua", f"{name}.lua").read_text()
        script: AsyncScript = self.redis.register_script(source)
        self._registered.append(script)
        return script

    async def load(self) -> None:
        """Make sure the server has every script (after a restart or SCRIPT FLUSH): needed
        before a script is sent with EVALSHA straight into a pipeline."""
        for script in self._registered:
            script.sha = await self.redis.script_load(script.script)
