-- What a notification says (title, body, url, icon, avatar, actions, group: herald.Content), as
-- one JSON object of the fields the publisher gave, or NULL when it gave none. One nullable
-- column rather than one per field: a notification without content costs a bit of the row's
-- null bitmap, the column is added without rewriting the table, and the fields are only ever
-- read together, never searched. TEXT, not JSONB: it is kept as Herald wrote it, like data.
ALTER TABLE herald_notifications ADD COLUMN content TEXT;
