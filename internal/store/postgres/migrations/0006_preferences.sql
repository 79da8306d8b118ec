-- Preferences: what each user muted, one row per rule (herald.Mute). A publish reads the rules
-- of its recipients in one statement of its own transaction (with the subscribers of a topic,
-- in the statement that reads them), and a change of a user's preferences replaces all their
-- rules in one transaction, so the publish sees the old rules or the new ones, never a mix.
-- Every read is by user, so the primary key leads with the user; a user's rules are bounded
-- (--max-preference-rules), so scanning them all costs little. Ids in the "C" collation, as
-- elsewhere.
CREATE TABLE herald_mutes (
    user_id TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL, -- in_app | push
    kind    TEXT COLLATE "C" NOT NULL, -- type | prefix | topic
    value   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, channel, kind, value)
);

-- Critical notifications go through every mute. The flag is kept for broadcasts above all,
-- which are filtered when each user reads them: a critical broadcast is never left out. A
-- constant default: adding the column rewrites no row.
ALTER TABLE herald_notifications ADD COLUMN critical BOOLEAN NOT NULL DEFAULT false;
