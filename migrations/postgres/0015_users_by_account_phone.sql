-- no-transaction
-- One person per phone number and account (0014).
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_by_account_phone ON users (account, phone);
