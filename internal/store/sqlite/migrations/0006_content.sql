-- What a notification says (title, body, url, icon, avatar, actions, group: herald.Content), as
-- one JSON object of the fields the publisher gave, or NULL when it gave none. One nullable
-- column rather than one per field: a notification without content costs a NULL (one byte of
-- the row's header), rows written before this migration are not rewritten, and the fields are
-- only ever read together, never searched.
ALTER TABLE notifications ADD COLUMN content TEXT;
