-- Topics: who follows what. A topic publish (a draft with a topic) reads its subscribers in the
-- transaction that writes its notifications, one per subscriber, so a subscription committed
-- concurrently is either fully in that publish or fully out of it. The primary key serves the
-- publish and the paged list of a topic's subscribers; the index serves "my topics".
CREATE TABLE topic_subscribers (
    topic      TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (topic, user_id)
) WITHOUT ROWID;
CREATE INDEX topic_subscribers_user ON topic_subscribers (user_id, topic);

-- The topic a notification was published to, NULL for a notification addressed by name or
-- broadcast: the envelope says it, and the inbox filters on it.
ALTER TABLE notifications ADD COLUMN topic TEXT;
