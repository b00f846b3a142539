//! End-to-end tests: HTTP in, HTTP out (to fake Graph API and OpenRouter
//! servers), rows in the database. Every test runs on SQLite and, when
//! TEST_DATABASE_URL is set, on PostgreSQL.

mod accounts;
mod admin_views;
mod agent;
mod campaigns;
mod compatible;
mod contacts;
mod conversation;
mod delivery;
mod evaluation;
mod fonnte;
mod gateway;
mod handoff;
mod helpers;
mod housekeeping;
mod inbox;
mod knowledge;
mod limits;
mod media;
mod operations;
mod outbox;
mod recovery;
mod robustness;
mod templates;
mod unanswered;
mod upgrade;
mod wa_outbox;
mod waha;
mod webchat;
mod webhook;
