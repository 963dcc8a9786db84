"""The Redis layer every process shares: the keyspace (the only place a key is spelled),
the connection, consumer groups, the one submit path, cancel, and the values kept in Redis
beside the streams (held dispatches, cron schedules, task markers)."""
