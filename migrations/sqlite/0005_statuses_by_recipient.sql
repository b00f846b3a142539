-- Whom a status is about (0004), so a send that got no answer finds the
-- status of a message we may have sent after all.
CREATE INDEX IF NOT EXISTS statuses_by_recipient ON delivery_statuses (recipient, occurred_secs);
