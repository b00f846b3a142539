-- The PostgreSQL twin of this step drops the old UNIQUE on phone and on bsuid
-- once the per-account indexes exist; SQLite's rebuild in 0014 left them out.
SELECT 1;
