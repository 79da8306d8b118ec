-- Tables are prefixed so that Herald can share a database (or a schema) with an application.

-- The head of every stream: a user id, or '' for broadcasts. Appends take each stream's row lock
-- (an upsert) before anything else and hold it to commit, so sequence numbers have no gaps and a
-- lower one never commits after a higher one, whichever node writes.
CREATE TABLE herald_streams (
    stream TEXT PRIMARY KEY,
    seq    BIGINT NOT NULL
);

-- Ids are taken after the stream locks, so within a stream they grow with sequence numbers.
CREATE SEQUENCE herald_notification_ids;

CREATE TABLE herald_notifications (
    id         BIGINT      PRIMARY KEY,
    stream     TEXT        NOT NULL,   -- recipient, '' for a broadcast
    seq        BIGINT      NOT NULL,
    type       TEXT        NOT NULL,
    data       BYTEA       NOT NULL,   -- compact JSON, kept byte for byte
    created_at TIMESTAMPTZ NOT NULL,
    read_at    TIMESTAMPTZ,            -- unicast only; broadcasts keep read state per user below
    CONSTRAINT herald_notifications_stream_seq UNIQUE (stream, seq)
);

CREATE TABLE herald_broadcast_reads (
    user_id         TEXT        NOT NULL,
    notification_id BIGINT      NOT NULL,
    read_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, notification_id)
);
CREATE INDEX herald_broadcast_reads_notification ON herald_broadcast_reads (notification_id);

CREATE TABLE herald_idempotency (
    scope      TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    hash       BYTEA       NOT NULL,   -- fingerprint of the draft
    result     TEXT        NOT NULL,   -- JSON [[id, user], ...]
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX herald_idempotency_created ON herald_idempotency (created_at);
