-- The store's identity (herald.Identity): store_id is made once, here, and never changes; epoch
-- changes whenever the history is replaced (a backup written by Herald gets a new one, and so
-- does a store marked restored), with epoch_since the last notification id before it.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES
    ('store_id', lower(hex(randomblob(16)))),
    ('epoch', lower(hex(randomblob(4)))),
    ('epoch_since', '0');
