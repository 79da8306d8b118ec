-- Retention deletes the read marks of pruned broadcasts by notification id; without this index
-- every sweep scanned all of broadcast_reads.
CREATE INDEX broadcast_reads_notification ON broadcast_reads (notification_id);
