-- The outbox: every message that leaves the server is a row here before it
-- is sent, and a sender worker moves it through
--   queued -> sending -> sent | failed_retryable -> ... | failed_permanent | dead.
-- `status` stays what WhatsApp reports after sending (accepted, sent,
-- delivered, read, failed); `state` is how far our sending got.
-- Replies of agents and the send API have no turn: turn_id becomes optional.
-- Filling the new columns rewrites outbound_messages under a write lock, so
-- replies wait (and are then sent) while this runs: upgrade in a quiet hour
-- if the table is large. Webhooks and claims do not touch this table.
ALTER TABLE outbound_messages ALTER COLUMN turn_id DROP NOT NULL;
ALTER TABLE outbound_messages
    ADD COLUMN user_id            BIGINT REFERENCES users (id),
    ADD COLUMN channel            TEXT,
    ADD COLUMN origin             TEXT    NOT NULL DEFAULT 'bot',
    ADD COLUMN final_part         BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN state              TEXT    NOT NULL DEFAULT 'sent',
    ADD COLUMN attempts           BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at    BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN give_up_at         BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN lease_token        TEXT,
    ADD COLUMN lease_until        BIGINT,
    ADD COLUMN attempt_started_at BIGINT,
    ADD COLUMN ambiguous          BOOLEAN NOT NULL DEFAULT FALSE;

UPDATE outbound_messages o SET
    user_id = t.user_id,
    channel = u.channel,
    final_part = o.part_index = (SELECT MAX(p.part_index) FROM outbound_messages p WHERE p.turn_id = o.turn_id),
    state = CASE WHEN o.wa_message_id IS NULL THEN 'failed_permanent' ELSE 'sent' END,
    attempts = 1,
    next_attempt_at = o.created_at,
    give_up_at = o.created_at
FROM turns t JOIN users u ON u.id = t.user_id
WHERE t.id = o.turn_id;

ALTER TABLE outbound_messages ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE outbound_messages ALTER COLUMN channel SET NOT NULL;
ALTER TABLE outbound_messages ALTER COLUMN origin DROP DEFAULT;
ALTER TABLE outbound_messages ALTER COLUMN final_part DROP DEFAULT;
ALTER TABLE outbound_messages ALTER COLUMN state DROP DEFAULT;
ALTER TABLE outbound_messages ALTER COLUMN next_attempt_at DROP DEFAULT;
ALTER TABLE outbound_messages ALTER COLUMN give_up_at DROP DEFAULT;

-- What the sender looks for: rows due now, and whether an earlier row to the
-- same person is still on its way (parts and replies keep their order).
CREATE INDEX outbox_due ON outbound_messages (next_attempt_at) WHERE state IN ('queued', 'failed_retryable');
CREATE INDEX outbox_unsent_by_user ON outbound_messages (user_id, id)
    WHERE state IN ('queued', 'sending', 'failed_retryable');
CREATE INDEX outbox_sending ON outbound_messages (lease_until) WHERE state = 'sending';
CREATE INDEX outbox_failed ON outbound_messages (updated_at) WHERE state IN ('failed_permanent', 'dead');
CREATE INDEX outbound_by_user ON outbound_messages (user_id, created_at);

-- Whom a status is about, so a send that timed out can be matched with the
-- status of a message we may have sent after all (indexed in 0005).
ALTER TABLE delivery_statuses ADD COLUMN recipient TEXT;
