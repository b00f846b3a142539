-- Channels beside WhatsApp (the web chat first) address people by their own
-- ids; the same phone number on two channels is two people.
ALTER TABLE users ADD COLUMN address TEXT;
CREATE UNIQUE INDEX users_by_channel_address ON users (channel, address);

-- The citations an answer drew on (JSON list), shown under it in the web
-- chat and the admin transcripts.
ALTER TABLE turns ADD COLUMN sources TEXT;
