-- People, the messages they send, the turns we answer and the replies we send.
-- Times are Unix milliseconds from our own clock unless named *_secs.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel         TEXT    NOT NULL,
    username        TEXT    NOT NULL UNIQUE,
    phone           TEXT    UNIQUE,
    bsuid           TEXT    UNIQUE,
    parent_bsuid    TEXT,
    profile_name    TEXT,
    created_at      INTEGER NOT NULL,
    last_claim_at   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          INTEGER NOT NULL REFERENCES users (id),
    started_at       INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id, last_activity_at);

CREATE TABLE inbound_messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    wa_message_id  TEXT    NOT NULL UNIQUE,
    user_id        INTEGER NOT NULL REFERENCES users (id),
    kind           TEXT    NOT NULL,
    body           TEXT,
    wants_reply    BOOLEAN NOT NULL,
    sent_at_secs   INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    turn_id        TEXT
);
CREATE INDEX inbound_waiting ON inbound_messages (user_id) WHERE turn_id IS NULL AND wants_reply;
CREATE INDEX inbound_by_turn ON inbound_messages (turn_id);

CREATE TABLE turns (
    id                TEXT    PRIMARY KEY,
    user_id           INTEGER NOT NULL REFERENCES users (id),
    session_id        INTEGER NOT NULL REFERENCES sessions (id),
    status            TEXT    NOT NULL,
    owner             TEXT    NOT NULL,
    lease_until       INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    last_message_at   INTEGER NOT NULL,
    answered_at       INTEGER,
    user_text         TEXT,
    reply_text        TEXT,
    reply_kind        TEXT,
    model             TEXT,
    llm_latency_ms    INTEGER,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER
);
CREATE INDEX turns_by_user ON turns (user_id, created_at);
CREATE INDEX turns_by_status ON turns (status, lease_until);

CREATE TABLE outbound_messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id        TEXT    NOT NULL REFERENCES turns (id),
    part_index     INTEGER NOT NULL,
    body           TEXT,
    wa_message_id  TEXT    UNIQUE,
    status         TEXT    NOT NULL,
    status_rank    INTEGER NOT NULL,
    error_code     INTEGER,
    error_title    TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (turn_id, part_index)
);

CREATE TABLE delivery_statuses (
    wa_message_id  TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    status_rank    INTEGER NOT NULL,
    error_code     INTEGER,
    occurred_secs  INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    PRIMARY KEY (wa_message_id, status)
);
