-- streams holds the head of every stream: a user id, or '' for broadcasts. Sequence numbers are
-- taken from here in the same transaction that inserts the notification, so they have no gaps.
CREATE TABLE streams (
    stream TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even once the newest are pruned
    stream     TEXT    NOT NULL,   -- recipient, '' for a broadcast
    seq        INTEGER NOT NULL,
    type       TEXT    NOT NULL,
    data       BLOB    NOT NULL,   -- compact JSON
    created_at INTEGER NOT NULL,   -- unix microseconds
    read_at    INTEGER             -- unicast only; broadcasts keep read state per user below
);
-- feed replay: a stream after a sequence number
CREATE UNIQUE INDEX notifications_stream_seq ON notifications (stream, seq);
-- inbox paging: a stream newest first
CREATE INDEX notifications_stream_id ON notifications (stream, id);

CREATE TABLE broadcast_reads (
    user_id         TEXT    NOT NULL,
    notification_id INTEGER NOT NULL,
    read_at         INTEGER NOT NULL,
    PRIMARY KEY (user_id, notification_id)
) WITHOUT ROWID;

CREATE TABLE idempotency (
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    hash       BLOB    NOT NULL,   -- fingerprint of the draft
    result     TEXT    NOT NULL,   -- JSON [[id, user], ...]
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_created ON idempotency (created_at);
