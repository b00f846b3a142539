-- The outbox: every message that leaves the server is a row here before it
-- is sent, and a sender worker moves it through
--   queued -> sending -> sent | failed_retryable -> ... | failed_permanent | dead.
-- `status` stays what WhatsApp reports after sending (accepted, sent,
-- delivered, read, failed); `state` is how far our sending got.
-- SQLite cannot drop NOT NULL from turn_id (replies of agents and the send
-- API have no turn), so the table is rebuilt.
CREATE TABLE outbox_rebuilt (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            INTEGER NOT NULL REFERENCES users (id),
    channel            TEXT    NOT NULL,
    origin             TEXT    NOT NULL,
    turn_id            TEXT    REFERENCES turns (id),
    part_index         INTEGER NOT NULL,
    final_part         BOOLEAN NOT NULL,
    body               TEXT,
    state              TEXT    NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER NOT NULL,
    give_up_at         INTEGER NOT NULL,
    lease_token        TEXT,
    lease_until        INTEGER,
    attempt_started_at INTEGER,
    ambiguous          BOOLEAN NOT NULL DEFAULT FALSE,
    wa_message_id      TEXT    UNIQUE,
    status             TEXT    NOT NULL,
    status_rank        INTEGER NOT NULL,
    error_code         INTEGER,
    error_title        TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (turn_id, part_index)
);

INSERT INTO outbox_rebuilt
    (id, user_id, channel, origin, turn_id, part_index, final_part, body, state, attempts, next_attempt_at,
     give_up_at, wa_message_id, status, status_rank, error_code, error_title, created_at, updated_at)
SELECT o.id, t.user_id, u.channel, 'bot', o.turn_id, o.part_index,
       o.part_index = (SELECT MAX(p.part_index) FROM outbound_messages p WHERE p.turn_id = o.turn_id),
       o.body, CASE WHEN o.wa_message_id IS NULL THEN 'failed_permanent' ELSE 'sent' END, 1, o.created_at,
       o.created_at, o.wa_message_id, o.status, o.status_rank, o.error_code, o.error_title, o.created_at, o.updated_at
FROM outbound_messages o JOIN turns t ON t.id = o.turn_id JOIN users u ON u.id = t.user_id;

DROP TABLE outbound_messages;
ALTER TABLE outbox_rebuilt RENAME TO outbound_messages;

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
