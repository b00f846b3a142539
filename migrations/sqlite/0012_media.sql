-- What customers send besides text (issue 16). The message carries the
-- provider's reference (`media_id`, WhatsApp's media id), its MIME type,
-- a document's file name and the message it replies to (`reply_to`, the
-- WhatsApp id in `context.id`).
--
-- Reading a message's media is stored step by step, so a turn taken over
-- after a crash never downloads or transcribes twice:
--   media_outcome NULL          not read yet
--   'downloaded'                the file is at DATA_DIR/media/<media_file>
--   'read'                      media_text holds the transcript or the
--                               document's text (NULL for a photo)
--   anything else               why it could not be read ('too_large',
--                               'refused_type', 'not_found', 'timed_out',
--                               'transcription_failed', 'unreadable',
--                               'over_turn_limit', ...); the turn says so
-- `media_file` is the SHA-256 of the bytes: a forwarded file is stored once,
-- and deleted when no message refers to it any more. `audio_ms` is the
-- length the transcription service reported; `media_chars` the characters
-- of a document that joined the turn.
ALTER TABLE inbound_messages ADD COLUMN media_id TEXT;
ALTER TABLE inbound_messages ADD COLUMN media_mime TEXT;
ALTER TABLE inbound_messages ADD COLUMN media_name TEXT;
ALTER TABLE inbound_messages ADD COLUMN reply_to TEXT;
ALTER TABLE inbound_messages ADD COLUMN media_outcome TEXT;
ALTER TABLE inbound_messages ADD COLUMN media_file TEXT;
ALTER TABLE inbound_messages ADD COLUMN media_bytes INTEGER;
ALTER TABLE inbound_messages ADD COLUMN media_text TEXT;
ALTER TABLE inbound_messages ADD COLUMN audio_ms INTEGER;
ALTER TABLE inbound_messages ADD COLUMN media_chars INTEGER;
CREATE INDEX inbound_by_media_file ON inbound_messages (media_file) WHERE media_file IS NOT NULL;
