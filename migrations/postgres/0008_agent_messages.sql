-- Messages a person of the business wrote: `author` is the agent's name
-- (ADMIN_AGENTS; 'admin' for the admin token) on origin 'agent', and 'phone'
-- on origin 'echo' (sent from the WhatsApp Business app, see coexistence in
-- the README). `idempotency_key` makes a retried agent request queue
-- nothing new; every part of one agent message carries it (indexed in 0009).
-- Columns without a default: no rewrite, the table is not locked for long.
ALTER TABLE outbound_messages ADD COLUMN author TEXT, ADD COLUMN idempotency_key TEXT;
