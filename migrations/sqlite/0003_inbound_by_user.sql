-- A person's messages in time order: the web chat's history, the admin
-- transcripts and the per-person counts of the status views read them so,
-- and without this each read scans every message anyone ever sent.
CREATE INDEX inbound_by_user ON inbound_messages (user_id, received_at);
