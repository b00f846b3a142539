-- A message of the send API may carry a file by address (image, document, video, audio): the
-- provider fetches it.
ALTER TABLE outbound_messages ADD COLUMN media_kind TEXT;
ALTER TABLE outbound_messages ADD COLUMN media_url TEXT;
ALTER TABLE outbound_messages ADD COLUMN media_filename TEXT;
