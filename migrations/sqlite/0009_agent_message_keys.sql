-- One agent message per key and conversation (0008): a retried or doubled
-- request conflicts here instead of queuing its parts again.
CREATE UNIQUE INDEX IF NOT EXISTS outbound_by_idempotency_key ON outbound_messages (user_id, idempotency_key, part_index)
    WHERE idempotency_key IS NOT NULL;
