-- no-transaction
-- Clean-up asks whether any message still refers to a media file.
CREATE INDEX CONCURRENTLY IF NOT EXISTS inbound_by_media_file ON inbound_messages (media_file) WHERE media_file IS NOT NULL;
