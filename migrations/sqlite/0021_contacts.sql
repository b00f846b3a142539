-- The business's contacts, per account ('' is the default account): who may
-- receive marketing templates. `consent` is 'unknown', 'opted_in' or
-- 'opted_out'; `consent_source` says who set it last ('customer:phrase',
-- 'admin:<name>', 'import', 'api:<token name>') and `consent_at` when.
-- Tags live in `contact_tags` so a campaign selects by tag through an index;
-- `account` is repeated there for that index.
-- `consent_log` keeps every change of consent, with the state before and
-- after: it is the proof of consent WhatsApp's policy asks for, so nothing
-- (housekeeping included) deletes from it, and it keeps the number even if
-- the contact's row were ever removed.
CREATE TABLE contacts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account        TEXT    NOT NULL DEFAULT '',
    phone          TEXT    NOT NULL,
    name           TEXT,
    consent        TEXT    NOT NULL DEFAULT 'unknown',
    consent_source TEXT,
    consent_at     INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (account, phone)
);
CREATE TABLE contact_tags (
    contact_id INTEGER NOT NULL REFERENCES contacts (id),
    account    TEXT    NOT NULL,
    tag        TEXT    NOT NULL,
    PRIMARY KEY (contact_id, tag)
);
CREATE INDEX contact_tags_by_tag ON contact_tags (account, tag);
CREATE TABLE consent_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id INTEGER NOT NULL,
    account    TEXT    NOT NULL,
    phone      TEXT    NOT NULL,
    old_state  TEXT    NOT NULL,
    new_state  TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    note       TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX consent_log_by_contact ON consent_log (contact_id, id);
