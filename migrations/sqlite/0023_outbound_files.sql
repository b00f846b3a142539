-- Files applications upload through the send API. A file is kept once however many messages carry it (keyed by
-- the SHA-256 of its bytes), in the database so that whichever replica claims a message can send it. Its bytes
-- are dropped (`contents` NULL) once no message still waiting to go out needs them; the row stays for the views
-- and idempotency checks of the messages that carried it, and goes with the last of them.
CREATE TABLE outbound_files (
    sha256     TEXT    PRIMARY KEY,
    mime       TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    contents   BLOB,
    -- Last queued with a message: a file this recent is never emptied, so a send queued while the cleanup runs
    -- always finds its bytes.
    touched_at INTEGER NOT NULL
);

-- The uploaded file (its SHA-256) an outbox row carries instead of an address in media_url.
ALTER TABLE outbound_messages ADD COLUMN media_file TEXT;
CREATE INDEX outbound_messages_media_file ON outbound_messages (media_file) WHERE media_file IS NOT NULL;
