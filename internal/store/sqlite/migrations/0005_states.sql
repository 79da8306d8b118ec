-- States of a notification per user beyond read: archived, and seen.
--
-- A user's own notification carries its archived_at, as it carries its read_at; a broadcast's is
-- per user, in broadcast_archives, like its read marks. Retention removes a broadcast's archive
-- marks with it.
ALTER TABLE notifications ADD COLUMN archived_at INTEGER;
CREATE TABLE broadcast_archives (
    user_id         TEXT    NOT NULL,
    notification_id INTEGER NOT NULL,
    archived_at     INTEGER NOT NULL,
    PRIMARY KEY (user_id, notification_id)
) WITHOUT ROWID;
CREATE INDEX broadcast_archives_notification ON broadcast_archives (notification_id);

-- Seen is one mark per user, not a row per notification: opening the list sees everything up to
-- the newest id shown, so a watermark says it in one row however many notifications and
-- broadcasts that covers. Retention removes a mark below every id still kept (it then changes
-- nothing), by the index.
CREATE TABLE user_marks (
    user_id    TEXT    PRIMARY KEY,
    seen_up_to INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX user_marks_seen ON user_marks (seen_up_to);
