-- Human handoff: whether the bot or a person answers someone, as data, so a
-- pause holds across crashes, restarts and replicas like the quiet window.
--   mode           'bot' | 'human'
--   pause_reason   'agent_reply' | 'phone_reply' | 'customer_asked' | 'admin'
--   paused_by      an agent's name, 'customer', 'phone' or 'admin'
--   paused_until   NULL: until someone resumes it by hand
--   waiting_since  the person asked for a human and nobody has answered yet
--   agent_seen_at  when an agent last opened the conversation
-- Turns gain the statuses 'held' (claimed while paused: consumed, never
-- answered) and 'draft' (a reply written while a pause committed: kept,
-- never sent); outbound_messages gains the origins 'agent' and 'echo' and
-- the state 'cancelled'. Those columns are free text, so only the new
-- columns and the audit trail are created here.
ALTER TABLE users ADD COLUMN mode TEXT NOT NULL DEFAULT 'bot';
ALTER TABLE users ADD COLUMN pause_reason TEXT;
ALTER TABLE users ADD COLUMN paused_by TEXT;
ALTER TABLE users ADD COLUMN paused_at BIGINT;
ALTER TABLE users ADD COLUMN paused_until BIGINT;
ALTER TABLE users ADD COLUMN waiting_since BIGINT;
ALTER TABLE users ADD COLUMN agent_seen_at BIGINT;

-- Every pause and resume, shown in the transcript. `actor` is who did it
-- (the column cannot be called "by", a reserved word in both databases):
-- an agent's name, 'customer', 'phone', 'admin', or 'expiry' for a pause
-- that ran out.
CREATE TABLE handoff_events (
    id       BIGSERIAL PRIMARY KEY,
    user_id  BIGINT  NOT NULL REFERENCES users (id),
    at       BIGINT  NOT NULL,
    action   TEXT    NOT NULL,
    reason   TEXT,
    actor    TEXT    NOT NULL,
    until    BIGINT
);
CREATE INDEX handoff_events_by_user ON handoff_events (user_id, at);
