-- People, the messages they send, the turns we answer and the replies we send.
-- Times are Unix milliseconds from our own clock unless named *_secs.

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    channel         TEXT    NOT NULL,
    username        TEXT    NOT NULL UNIQUE,
    phone           TEXT    UNIQUE,
    bsuid           TEXT    UNIQUE,
    parent_bsuid    TEXT,
    profile_name    TEXT,
    created_at      BIGINT  NOT NULL,
    last_claim_at   BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    id               BIGSERIAL PRIMARY KEY,
    user_id          BIGINT  NOT NULL REFERENCES users (id),
    started_at       BIGINT  NOT NULL,
    last_activity_at BIGINT  NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id, last_activity_at);

CREATE TABLE inbound_messages (
    id             BIGSERIAL PRIMARY KEY,
    wa_message_id  TEXT    NOT NULL UNIQUE,
    user_id        BIGINT  NOT NULL REFERENCES users (id),
    kind           TEXT    NOT NULL,
    body           TEXT,
    wants_reply    BOOLEAN NOT NULL,
    sent_at_secs   BIGINT  NOT NULL,
    received_at    BIGINT  NOT NULL,
    turn_id        TEXT
);
CREATE INDEX inbound_waiting ON inbound_messages (user_id) WHERE turn_id IS NULL AND wants_reply;
CREATE INDEX inbound_by_turn ON inbound_messages (turn_id);

CREATE TABLE turns (
    id                TEXT    PRIMARY KEY,
    user_id           BIGINT  NOT NULL REFERENCES users (id),
    session_id        BIGINT  NOT NULL REFERENCES sessions (id),
    status            TEXT    NOT NULL,
    owner             TEXT    NOT NULL,
    lease_until       BIGINT  NOT NULL,
    created_at        BIGINT  NOT NULL,
    last_message_at   BIGINT  NOT NULL,
    answered_at       BIGINT ,
    user_text         TEXT,
    reply_text        TEXT,
    reply_kind        TEXT,
    model             TEXT,
    llm_latency_ms    BIGINT ,
    prompt_tokens     BIGINT ,
    completion_tokens BIGINT 
);
CREATE INDEX turns_by_user ON turns (user_id, created_at);
CREATE INDEX turns_by_status ON turns (status, lease_until);

CREATE TABLE outbound_messages (
    id             BIGSERIAL PRIMARY KEY,
    turn_id        TEXT    NOT NULL REFERENCES turns (id),
    part_index     BIGINT  NOT NULL,
    body           TEXT,
    wa_message_id  TEXT    UNIQUE,
    status         TEXT    NOT NULL,
    status_rank    BIGINT  NOT NULL,
    error_code     BIGINT ,
    error_title    TEXT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    UNIQUE (turn_id, part_index)
);

CREATE TABLE delivery_statuses (
    wa_message_id  TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    status_rank    BIGINT  NOT NULL,
    error_code     BIGINT ,
    occurred_secs  BIGINT  NOT NULL,
    received_at    BIGINT  NOT NULL,
    PRIMARY KEY (wa_message_id, status)
);
