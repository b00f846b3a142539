-- Several WhatsApp numbers at once: a person is someone who wrote to one
-- `account` (which of the business's numbers; '' is the default account,
-- which everyone from before keeps), so the same phone number or BSUID is
-- one person per account. `username` stays unique (the code prefixes it with
-- the account) and users_by_channel_address stays as it is.
--
-- SQLite cannot drop the column-level UNIQUE on phone and bsuid, so users is
-- rebuilt with the same ids. sqlx runs every SQLite migration in a
-- transaction (sqlx-sqlite 0.8.6 ignores `-- no-transaction`) on a
-- connection with foreign_keys ON, where `PRAGMA foreign_keys = OFF` does
-- nothing; instead the checks wait for COMMIT (defer_foreign_keys, reset by
-- the COMMIT): dropping users counts the rows that refer to its people,
-- inserting them again under the same ids counts them back, and COMMIT fails
-- (rolling everything back) unless every such row found its person again.
-- No RENAME: with foreign keys on, renaming users would rewrite the
-- REFERENCES of every table that points at it. See migrations/README.md.
PRAGMA defer_foreign_keys = ON;

-- The copy, and the AUTOINCREMENT counter, which can be above the highest id
-- left (cleanup deletes people) and goes with the dropped table.
CREATE TABLE users_before_accounts AS SELECT * FROM users;
CREATE TABLE users_before_accounts_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'users';

DROP TABLE users;

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel         TEXT    NOT NULL,
    username        TEXT    NOT NULL UNIQUE,
    phone           TEXT,
    bsuid           TEXT,
    parent_bsuid    TEXT,
    profile_name    TEXT,
    created_at      INTEGER NOT NULL,
    last_claim_at   INTEGER NOT NULL DEFAULT 0,
    address         TEXT,
    mode            TEXT    NOT NULL DEFAULT 'bot',
    pause_reason    TEXT,
    paused_by       TEXT,
    paused_at       INTEGER,
    paused_until    INTEGER,
    waiting_since   INTEGER,
    agent_seen_at   INTEGER,
    account         TEXT    NOT NULL DEFAULT ''
);

INSERT INTO users (id, channel, username, phone, bsuid, parent_bsuid, profile_name, created_at, last_claim_at,
                   address, mode, pause_reason, paused_by, paused_at, paused_until, waiting_since, agent_seen_at,
                   account)
SELECT id, channel, username, phone, bsuid, parent_bsuid, profile_name, created_at, last_claim_at,
       address, mode, pause_reason, paused_by, paused_at, paused_until, waiting_since, agent_seen_at, ''
FROM users_before_accounts ORDER BY id;

-- The inserts left the counter at the highest id (or no row, for an empty
-- table); ids are never given twice, so it goes back to at least where it was.
INSERT INTO sqlite_sequence (name, seq)
SELECT 'users', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'users')
                    AND EXISTS (SELECT 1 FROM users_before_accounts_seq);
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT MAX(seq) FROM users_before_accounts_seq))
WHERE name = 'users' AND EXISTS (SELECT 1 FROM users_before_accounts_seq);

DROP TABLE users_before_accounts;
DROP TABLE users_before_accounts_seq;

-- Every index users had (0002, 0010), and the new keys (made again, as no-ops,
-- by 0015 and 0016, the steps that build them concurrently on PostgreSQL).
CREATE UNIQUE INDEX users_by_channel_address ON users (channel, address);
CREATE INDEX users_in_handoff ON users (waiting_since) WHERE mode = 'human' OR waiting_since IS NOT NULL;
CREATE UNIQUE INDEX users_by_account_phone ON users (account, phone);
CREATE UNIQUE INDEX users_by_account_bsuid ON users (account, bsuid);
