-- A message of the send API may carry a file by address (image, document, video, audio): the
-- provider fetches it. Nullable columns without defaults: no rewrite of the table.
ALTER TABLE outbound_messages ADD COLUMN media_kind TEXT, ADD COLUMN media_url TEXT, ADD COLUMN media_filename TEXT;
