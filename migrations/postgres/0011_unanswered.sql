-- Turns the bot could not answer from the documents (see the SQLite file
-- of this number for the columns).
CREATE TABLE unanswered_questions (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users (id),
    turn_id    TEXT    NOT NULL,
    question   TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    top_score_milli BIGINT,
    asked_at   BIGINT  NOT NULL
);
CREATE INDEX unanswered_questions_by_time ON unanswered_questions (asked_at);
CREATE INDEX unanswered_questions_by_user ON unanswered_questions (user_id);
