-- no-transaction
-- The day's LLM tokens (LLM_DAILY_TOKEN_BUDGET) are summed over the turns
-- claimed since midnight.
CREATE INDEX CONCURRENTLY IF NOT EXISTS turns_by_created ON turns (created_at);
