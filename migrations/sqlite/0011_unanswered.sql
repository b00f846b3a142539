-- Turns the bot could not answer from the documents, for the business to
-- see which documents are missing. `reason` is 'no_passages' (nothing
-- matched), 'low_score' (the best passage scored below
-- KNOWLEDGE_MIN_SCORE) or 'model_unsure' (the model wrote the [TIDAK_TAHU]
-- marker). `question` is the customer's own words: admin-only data, gone
-- with the conversation at cleanup. Dismissing a group deletes its rows.
-- `top_score_milli` is the best passage's score in thousandths: sqlx's Any
-- driver cannot bind a float to PostgreSQL, and an integer is exact on both.
CREATE TABLE unanswered_questions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    turn_id    TEXT    NOT NULL,
    question   TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    top_score_milli INTEGER,
    asked_at   INTEGER NOT NULL
);
CREATE INDEX unanswered_questions_by_time ON unanswered_questions (asked_at);
CREATE INDEX unanswered_questions_by_user ON unanswered_questions (user_id);
