"""SQLAlchemy Core definitions of every table: the one source of truth for the schema.

Alembic migrations are written from these. Projection tables hold foreign keys only
within one aggregate (a task and its results, logs, executions): rows of different
aggregates may be projected by different partitions in any relative order, so a key
such as tasks.worker_id -> workers would fail on a perfectly valid event order.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB, UUID

metadata = MetaData()

TIMESTAMP = DateTime(timezone=True)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", UUID(as_uuid=True), primary_key=True),
    Column("task_name", String(255), nullable=False),
    Column("task_args", JSONB),
    Column("task_kwargs", JSONB),
    # The seed's 1-10 integer, kept for its index; priority_level is what the API shows.
    Column("priority", Integer, nullable=False, server_default=text("5")),
    Column("priority_level", String(16), nullable=False, server_default=text("'medium'")),
    Column("status", String(50), nullable=False),
    Column("retry_count", Integer, nullable=False, server_default=text("0")),
    Column("max_retries", Integer, nullable=False, server_default=text("5")),
    Column("timeout_seconds", Integer, nullable=False, server_default=text("300")),
    Column("parent_task_id", UUID(as_uuid=True)),
    Column("depends_on", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=text("'{}'")),
    Column("campaign_id", UUID(as_uuid=True)),
    Column("created_at", TIMESTAMP, nullable=False, server_default=func.now()),
    Column("scheduled_at", TIMESTAMP),
    Column("started_at", TIMESTAMP),
    Column("completed_at", TIMESTAMP),
    Column("worker_id", UUID(as_uuid=True)),
    # JWT subjects are opaque strings, not always UUIDs as the seed assumed.
    Column("created_by", String(255)),
    Column("correlation_id", String(64), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("progress_percent", Float),
    Column("progress_message", Text),
    Column("last_event_id", String(32), nullable=False),
    Column("updated_at", TIMESTAMP, nullable=False),
)
Index("idx_status_priority", tasks.c.status, tasks.c.priority.desc())
Index("idx_scheduled_at", tasks.c.scheduled_at, postgresql_where=text("status = 'SCHEDULED'"))
# Partial: most tasks belong to no campaign, and lookups are always by a campaign id.
Index("idx_campaign_id", tasks.c.campaign_id, postgresql_where=text("campaign_id IS NOT NULL"))
Index("idx_created_at", tasks.c.created_at.desc(), tasks.c.task_id.desc())
Index("idx_tasks_task_name", tasks.c.task_name)

task_results = Table(
    "task_results",
    metadata,
    Column("result_id", UUID(as_uuid=True), primary_key=True),
    Column("task_id", UUID(as_uuid=True), ForeignKey("tasks.task_id"), unique=True, nullable=False),
    Column("result_data", JSONB),
    Column("error_type", String(255)),
    Column("error_message", Text),
    Column("stack_trace", Text),
    Column("created_at", TIMESTAMP, nullable=False, server_default=func.now()),
)

task_logs = Table(
    "task_logs",
    metadata,
    Column("log_id", UUID(as_uuid=True), primary_key=True),
    Column("task_id", UUID(as_uuid=True), ForeignKey("tasks.task_id"), nullable=False),
    Column("level", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("metadata", JSONB),
    Column("created_at", TIMESTAMP, nullable=False, server_default=func.now()),
)
Index("idx_task_logs_task_id", task_logs.c.task_id, task_logs.c.created_at.desc())

workers = Table(
    "workers",
    metadata,
    Column("worker_id", UUID(as_uuid=True), primary_key=True),
    Column("hostname", String(255)),
    Column("status", String(50), nullable=False),
    Column("capacity", Integer, nullable=False, server_default=text("5")),
    Column("current_load", Integer, nullable=False, server_default=text("0")),
    Column("last_heartbeat", TIMESTAMP),
    Column("registered_at", TIMESTAMP, nullable=False, server_default=func.now()),
    Column("stopped_at", TIMESTAMP),
    Column("metadata", JSONB),
)
Index("idx_workers_heartbeat", workers.c.last_heartbeat.desc())

task_executions = Table(
    "task_executions",
    metadata,
    Column("execution_id", UUID(as_uuid=True), primary_key=True),
    Column("task_id", UUID(as_uuid=True), ForeignKey("tasks.task_id"), nullable=False),
    Column("worker_id", UUID(as_uuid=True)),
    Column("attempt_number", Integer),
    Column("started_at", TIMESTAMP),
    Column("completed_at", TIMESTAMP),
    Column("duration_seconds", Numeric(10, 3)),
    Column("status", String(50)),
    Column("error_message", Text),
)
Index("idx_task_executions_task_id", task_executions.c.task_id)

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", UUID(as_uuid=True), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("status", String(50), nullable=False),
    Column("template_subject", String(255)),
    Column("template_body", Text),
    Column("template_variables", JSONB),
    Column("total_recipients", Integer, nullable=False, server_default=text("0")),
    Column("sent_count", Integer, nullable=False, server_default=text("0")),
    Column("failed_count", Integer, nullable=False, server_default=text("0")),
    Column("created_at", TIMESTAMP, nullable=False, server_default=func.now()),
    Column("scheduled_at", TIMESTAMP),
    Column("started_at", TIMESTAMP),
    Column("completed_at", TIMESTAMP),
    Column("created_by", String(255)),
    Column("rate_limit_per_minute", Integer, nullable=False, server_default=text("100")),
)

email_recipients = Table(
    "email_recipients",
    metadata,
    Column("recipient_id", UUID(as_uuid=True), primary_key=True),
    Column("campaign_id", UUID(as_uuid=True), ForeignKey("campaigns.campaign_id"), nullable=False),
    Column("email", String(255), nullable=False),
    Column("status", String(50), nullable=False),
    Column("personalization", JSONB),
    Column("sent_at", TIMESTAMP),
    Column("task_id", UUID(as_uuid=True)),
    Column("error_message", Text),
    Column("bounce_reason", Text),
)
Index("idx_email_campaign_status", email_recipients.c.campaign_id, email_recipients.c.status)

dead_letter_queue = Table(
    "dead_letter_queue",
    metadata,
    Column("dlq_id", UUID(as_uuid=True), primary_key=True),
    Column("task_id", UUID(as_uuid=True), ForeignKey("tasks.task_id"), nullable=False),
    Column("task_data", JSONB),
    Column("failure_reason", Text, nullable=False),
    Column("stack_trace", Text),
    Column("total_attempts", Integer),
    Column("moved_at", TIMESTAMP, nullable=False, server_default=func.now()),
    Column("requeued_at", TIMESTAMP),
)
Index("idx_dlq_moved_at", dead_letter_queue.c.moved_at)

# Operator actions (OperatorActed): who did what to which task, worker or projection, why.
audit_log = Table(
    "audit_log",
    metadata,
    Column("audit_id", UUID(as_uuid=True), primary_key=True),
    Column("event_id", String(32), nullable=False),
    Column("occurred_at", TIMESTAMP, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target_kind", String(32), nullable=False),
    Column("target", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("via", String(16), nullable=False),
    Column("request_id", String(128)),
    Column("detail", JSONB, nullable=False),
)
Index("idx_audit_log_occurred_at", audit_log.c.occurred_at.desc(), audit_log.c.audit_id.desc())
Index("idx_audit_log_target", audit_log.c.target)

# Every event ever appended (ARCHITECTURE: "PostgreSQL's event archive holds all of it").
event_archive = Table(
    "event_archive",
    metadata,
    Column("partition", SmallInteger, nullable=False),
    Column("event_id", String(32), nullable=False),
    # The stream id split in two so SQL orders events exactly as the stream does.
    Column("id_ms", BigInteger, nullable=False),
    Column("id_seq", BigInteger, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("schema_version", SmallInteger, nullable=False),
    Column("aggregate_id", String(64), nullable=False),
    Column("occurred_at", TIMESTAMP, nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Column("causation_id", String(64)),
    Column("traceparent", String(64)),
    Column("actor", String(255)),
    # json, not jsonb: the payload exactly as written, and no conversion per event archived.
    Column("payload", JSON, nullable=False),
    Column("archived_at", TIMESTAMP, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("partition", "id_ms", "id_seq", name="event_archive_pkey"),
)
Index("idx_event_archive_aggregate", event_archive.c.aggregate_id, event_archive.c.id_ms, event_archive.c.id_seq)

projection_checkpoints = Table(
    "projection_checkpoints",
    metadata,
    Column("projection", String(64), nullable=False),
    Column("partition", SmallInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    # Fencing token of the projector that wrote last; a lower one may no longer write.
    Column("fence", BigInteger, nullable=False, server_default=text("0")),
    Column("updated_at", TIMESTAMP, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("projection", "partition", name="projection_checkpoints_pkey"),
)

# Stream entries that could not be projected or run (an event that does not decode or that
# PostgreSQL refuses, a dispatch entry a worker cannot read): kept whole, with the error,
# instead of stopping the projector or being dropped (ADR 0014). Together with the archive
# it holds every entry the streams ever carried.
quarantined_entries = Table(
    "quarantined_entries",
    metadata,
    Column("stream", String(255), nullable=False),
    # Any stream id: two unsigned 64-bit numbers, up to 41 characters.
    Column("entry_id", String(64), nullable=False),
    Column("partition", SmallInteger, nullable=False),
    Column("id_ms", BigInteger, nullable=False),
    Column("id_seq", BigInteger, nullable=False),
    # "projector": an event it could not decode or write; "worker": a dispatch entry.
    Column("source", String(16), nullable=False),
    Column("event_type", String(64)),
    Column("aggregate_id", String(64)),
    # The entry's bytes as read: the event payload, or a dispatch entry's fields as JSON.
    Column("raw", LargeBinary, nullable=False),
    Column("error", Text, nullable=False),
    Column("quarantined_at", TIMESTAMP, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("stream", "entry_id", name="quarantined_entries_pkey"),
)
