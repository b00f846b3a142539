-- Several WhatsApp numbers at once: a person is someone who wrote to one
-- `account` (which of the business's numbers; '' is the default account,
-- which everyone from before keeps), so the same phone number or BSUID is
-- one person per account. `username` stays unique (the code prefixes it with
-- the account) and users_by_channel_address stays as it is.
-- A constant default: PostgreSQL 11+ adds the column without rewriting the
-- table. The per-account keys are built concurrently (0015, 0016) before the
-- old ones on phone and bsuid go (0017), so during a rolling deploy a phone
-- number is never unprotected.
ALTER TABLE users ADD COLUMN account TEXT NOT NULL DEFAULT '';
