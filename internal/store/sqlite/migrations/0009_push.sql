-- Web Push. A browser's subscription is its endpoint (unique: one browser, one user at a time)
-- and its keys; the index on user_id serves a user's list and the outbox's join at append.
CREATE TABLE push_subscriptions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT    NOT NULL,
    endpoint   TEXT    NOT NULL UNIQUE,
    p256dh     TEXT    NOT NULL,
    auth       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);

-- The outbox: one row per pending push (a notification to one subscription), written in the
-- transaction of the notification's append. due_at is when it may next be claimed: the push
-- delay after the commit, then the end of a claim's lease, or a retry's time. claim is the
-- token of the last claim. created_at is the notification's commit time (for the TTL and age).
CREATE TABLE push_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id INTEGER NOT NULL,
    user_id         TEXT    NOT NULL,
    subscription_id INTEGER NOT NULL,
    immediate       INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    claim           TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX push_outbox_due ON push_outbox (due_at);
CREATE INDEX push_outbox_subscription ON push_outbox (subscription_id);

-- Presence: when each user last had a stream open on any node (written by the nodes every few
-- seconds while streams are open, and when one opens or closes). A fallback push is not sent
-- to a user present since the notification was committed.
CREATE TABLE push_presence (
    user_id TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
) WITHOUT ROWID;
