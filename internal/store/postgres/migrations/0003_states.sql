-- States of a notification per user beyond read: archived, and seen.
--
-- A user's own notification carries its archived_at, as it carries its read_at; a broadcast's is
-- per user, in herald_broadcast_archives, like its read marks. Retention removes a broadcast's
-- archive marks with it. (A nullable column without a default is added without rewriting the
-- table.)
ALTER TABLE herald_notifications ADD COLUMN archived_at TIMESTAMPTZ;
CREATE TABLE herald_broadcast_archives (
    user_id         TEXT        NOT NULL,
    notification_id BIGINT      NOT NULL,
    archived_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, notification_id)
);
CREATE INDEX herald_broadcast_archives_notification ON herald_broadcast_archives (notification_id);

-- Seen is one mark per user, not a row per notification: opening the list sees everything up to
-- the newest id shown, so a watermark says it in one row however many notifications and
-- broadcasts that covers. Retention removes a mark below every id still kept (it then changes
-- nothing), by the index.
CREATE TABLE herald_user_marks (
    user_id    TEXT   PRIMARY KEY,
    seen_up_to BIGINT NOT NULL
);
CREATE INDEX herald_user_marks_seen ON herald_user_marks (seen_up_to);
