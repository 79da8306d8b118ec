-- Preferences: what each user muted, one row per rule (herald.Mute). A publish reads the rules
-- of its recipients in its own transaction, on the writer connection where they are written
-- too, so a change of a user's preferences (all their rules replaced in one transaction) is
-- wholly before or wholly after it. Every read is by user (the rules of the recipients of a
-- publish, of each subscriber of a topic, of a stream's user, of an inbox's), so the primary key
-- leads with the user; a user's rules are bounded (--max-preference-rules), so scanning them
-- all costs little.
CREATE TABLE mutes (
    user_id TEXT NOT NULL,
    channel TEXT NOT NULL, -- in_app | push
    kind    TEXT NOT NULL, -- type | prefix | topic
    value   TEXT NOT NULL,
    PRIMARY KEY (user_id, channel, kind, value)
) WITHOUT ROWID;

-- Critical notifications go through every mute. The flag is kept for broadcasts above all,
-- which are filtered when each user reads them: a critical broadcast is never left out. Rows
-- written before this migration were not critical.
ALTER TABLE notifications ADD COLUMN critical INTEGER NOT NULL DEFAULT 0;
