"""The coordinator process: puts held tasks (scheduled, retrying) on their dispatch
streams when due. N replicas run; per partition one leads, by a Redis lease with a
fencing token, and a stale leader's writes are refused."""
