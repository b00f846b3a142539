-- The same phone number or BSUID may now be one person per account: the keys
-- of 0001 go, now that users_by_account_phone and users_by_account_bsuid
-- (0015, 0016) hold each per account. Dropping a constraint is quick, but
-- waits for its lock behind any long transaction on users.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_phone_key, DROP CONSTRAINT IF EXISTS users_bsuid_key;
