-- Campaigns: one approved template sent to many people, paced, within hours and days, never twice to anyone.
-- A recipient is released into the outbox (an `outbound_messages` row, origin 'api') in the transaction that
-- marks it released, so a restart mid-campaign neither skips nor repeats anyone; what happened to the message
-- afterwards is its outbox row's.
CREATE TABLE campaigns (
    id                BIGSERIAL PRIMARY KEY,
    account           TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    template_name     TEXT    NOT NULL,
    template_language TEXT    NOT NULL,
    -- The token that created it; its messages carry it as their author.
    author            TEXT    NOT NULL,
    idempotency_key   TEXT,
    -- scheduled, running, paused, cancelled, done
    state             TEXT    NOT NULL,
    schedule_at       BIGINT  NOT NULL,
    -- `BUSINESS_HOURS`-style hours and a JSON array of YYYY-MM-DD holidays.
    hours             TEXT    NOT NULL,
    holidays          TEXT    NOT NULL,
    -- Messages per second asked for, and now (lowered after Meta said "too many").
    rate_milli        BIGINT  NOT NULL,
    current_rate_milli BIGINT  NOT NULL,
    slowdowns         BIGINT  NOT NULL DEFAULT 0,
    throttled_at      BIGINT,
    -- Why it stopped by itself (a template Meta paused), for the operator.
    note              TEXT,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    started_at        BIGINT,
    finished_at       BIGINT,
    UNIQUE (author, idempotency_key)
);
CREATE INDEX campaigns_active ON campaigns (state, schedule_at);

CREATE TABLE campaign_recipients (
    id          BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT  NOT NULL REFERENCES campaigns (id),
    phone       TEXT    NOT NULL,
    name        TEXT,
    -- Graph's `template` object filled for this person (none where the provider has no templates), the text it
    -- renders to, and a header file.
    template    TEXT,
    body        TEXT    NOT NULL,
    media_kind  TEXT,
    media_url   TEXT,
    media_filename TEXT,
    -- pending, released, skipped, cancelled
    state       TEXT    NOT NULL,
    -- Meta's pair limit: not before this (Unix ms) when this person was just written to.
    not_before  BIGINT  NOT NULL DEFAULT 0,
    outbound_id BIGINT  REFERENCES outbound_messages (id),
    reason      TEXT,
    released_at BIGINT,
    UNIQUE (campaign_id, phone)
);
CREATE INDEX campaign_recipients_pending ON campaign_recipients (campaign_id, id) WHERE state = 'pending';

-- Which process runs the campaigns, so the global rate holds across replicas.
CREATE TABLE worker_leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    lease_until BIGINT  NOT NULL
);

-- When Meta last answered "too many messages" (130429, 131056) to an attempt at this row; kept after a retry
-- succeeds, so a campaign learns to slow down.
ALTER TABLE outbound_messages ADD COLUMN throttled_at BIGINT;
