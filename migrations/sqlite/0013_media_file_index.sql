-- The PostgreSQL twin of this step builds its index concurrently in a file of
-- its own; SQLite built it in 0012.
SELECT 1;
