-- Message templates of each account, as the business account (Graph `message_templates`) last described
-- them, or as submitted here for a provider without Meta's template review (Fonnte, WAHA: sent as text).
-- `definition` is the template's JSON as Graph gives it (components, parameter_format): what a send is
-- checked against. Status webhooks update `status` between refreshes.
CREATE TABLE message_templates (
    account    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    language   TEXT    NOT NULL,
    meta_id    TEXT,
    status     TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    definition TEXT    NOT NULL,
    reason     TEXT,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (account, name, language)
);

-- When each account's list was last read from Graph, and why the last try failed.
CREATE TABLE template_syncs (
    account    TEXT    PRIMARY KEY,
    synced_at  BIGINT,
    error      TEXT,
    tried_at   BIGINT  NOT NULL
);

-- A template message: Graph's `template` object (name, language, components with their parameters).
-- `body` holds the text it renders to, for transcripts, the bot's history and providers without templates.
ALTER TABLE outbound_messages ADD COLUMN template TEXT;
