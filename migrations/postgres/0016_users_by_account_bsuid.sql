-- no-transaction
-- One person per BSUID and account (0014).
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_by_account_bsuid ON users (account, bsuid);
