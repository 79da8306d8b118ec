-- The store's identity (herald.Identity): store_id is made once, here, and never changes; epoch
-- changes whenever the history is replaced (a database marked restored gets a new one), with
-- epoch_since the last notification id before it. Every node of a cluster reads the same row.
CREATE TABLE herald_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO herald_meta (key, value) VALUES
    ('store_id', md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text)),
    ('epoch', substr(md5(random()::text || clock_timestamp()::text), 1, 8)),
    ('epoch_since', '0');
