-- Within a stream ids grow with sequence numbers (one writer assigns both in commit order), so the
-- inbox pages newest first through notifications_stream_seq. This second per-stream index cost a
-- third of every insert.
DROP INDEX notifications_stream_id;
