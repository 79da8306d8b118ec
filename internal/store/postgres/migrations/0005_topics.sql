-- Topics: who follows what. A topic publish (a draft with a topic) reads its subscribers in the
-- transaction that writes its notifications, one per subscriber, in a single statement, so a
-- subscription committed concurrently is either fully in that publish or fully out of it. The
-- primary key serves the publish and the paged list of a topic's subscribers; the index serves
-- "my topics". Both ids are in the "C" collation: pages are in byte order, as in SQLite, and the
-- primary key serves them whatever the database's collation.
CREATE TABLE herald_topic_subscribers (
    topic      TEXT        COLLATE "C" NOT NULL,
    user_id    TEXT        COLLATE "C" NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, user_id)
);
CREATE INDEX herald_topic_subscribers_user ON herald_topic_subscribers (user_id, topic);

-- The topic a notification was published to, NULL for a notification addressed by name or
-- broadcast: the envelope says it, and the inbox filters on it.
ALTER TABLE herald_notifications ADD COLUMN topic TEXT;
