-- The agent inbox lists, and the status counts, the conversations waiting for
-- a person or paused; few among everyone who ever wrote, so they are found
-- through an index that holds only them. Queries name this exact predicate
-- (SQLite uses a partial index only for a WHERE it can match to it).
CREATE INDEX IF NOT EXISTS users_in_handoff ON users (waiting_since) WHERE mode = 'human' OR waiting_since IS NOT NULL;
