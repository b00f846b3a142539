-- One person per BSUID and account. PostgreSQL builds this index
-- concurrently in a file of its own; SQLite built it with the rebuild in 0014.
CREATE UNIQUE INDEX IF NOT EXISTS users_by_account_bsuid ON users (account, bsuid);
