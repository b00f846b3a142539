-- The send API finds a message by its idempotency key alone, whoever it went to.
CREATE INDEX IF NOT EXISTS outbound_by_key ON outbound_messages (idempotency_key) WHERE idempotency_key IS NOT NULL;
