-- What customers send besides text (see the SQLite file of this number for
-- the columns and the steps of reading a message's media).
ALTER TABLE inbound_messages
    ADD COLUMN media_id TEXT,
    ADD COLUMN media_mime TEXT,
    ADD COLUMN media_name TEXT,
    ADD COLUMN reply_to TEXT,
    ADD COLUMN media_outcome TEXT,
    ADD COLUMN media_file TEXT,
    ADD COLUMN media_bytes BIGINT,
    ADD COLUMN media_text TEXT,
    ADD COLUMN audio_ms BIGINT,
    ADD COLUMN media_chars BIGINT;
