-- The business's contacts and every change of their consent (see the SQLite
-- file of this number for the columns). New tables, so their indexes are
-- built here, in the migration's transaction: nobody writes to them yet.
CREATE TABLE contacts (
    id             BIGSERIAL PRIMARY KEY,
    account        TEXT   NOT NULL DEFAULT '',
    phone          TEXT   NOT NULL,
    name           TEXT,
    consent        TEXT   NOT NULL DEFAULT 'unknown',
    consent_source TEXT,
    consent_at     BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (account, phone)
);
CREATE TABLE contact_tags (
    contact_id BIGINT NOT NULL REFERENCES contacts (id),
    account    TEXT   NOT NULL,
    tag        TEXT   NOT NULL,
    PRIMARY KEY (contact_id, tag)
);
CREATE INDEX contact_tags_by_tag ON contact_tags (account, tag);
CREATE TABLE consent_log (
    id         BIGSERIAL PRIMARY KEY,
    contact_id BIGINT NOT NULL,
    account    TEXT   NOT NULL,
    phone      TEXT   NOT NULL,
    old_state  TEXT   NOT NULL,
    new_state  TEXT   NOT NULL,
    source     TEXT   NOT NULL,
    note       TEXT,
    at         BIGINT NOT NULL
);
CREATE INDEX consent_log_by_contact ON consent_log (contact_id, id);
