-- no-transaction
-- The agent inbox lists, and the status counts, the conversations waiting for
-- a person or paused; few among everyone who ever wrote, so they are found
-- through an index that holds only them (see the SQLite file of this number).
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_in_handoff ON users (waiting_since) WHERE mode = 'human' OR waiting_since IS NOT NULL;
