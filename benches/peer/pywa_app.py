"""The peer that `cargo bench --bench peer` compares our webhook ingest with.

A FastAPI app receiving WhatsApp webhooks through pywa, used as a library:
pywa checks X-Hub-Signature-256 with the app secret and parses the update
into a message, and its message handler stores the message in SQLite (WAL,
synchronous=NORMAL, as our server's SQLite) in its own committed
transaction. The webhook is answered 200 only after that commit, as ours
is, so both sides acknowledge only what is stored.

pywa's own FastAPI route answers 200 first and handles the update in a
background task afterwards, which would not store before acknowledging;
this app therefore has a route of its own that calls pywa's validator and
handler before it answers (the way pywa documents for custom servers).

Settings, from the environment (each uvicorn worker reads them):
  PEER_APP_SECRET  the Meta app secret the webhooks are signed with
  PEER_PHONE_ID    the business phone number id the webhooks are for
  PEER_DATABASE    SQLite file to store messages in; unset: the handler
                   does nothing (what pywa and FastAPI cost without storage)

Run: python3 -m uvicorn pywa_app:app --app-dir benches/peer --workers N
"""

import contextvars
import os
import sqlite3
import time

from fastapi import FastAPI, Request, Response
from pywa import WhatsApp, types

WEBHOOK_PATH = "/webhook/whatsapp"

app = FastAPI()
wa = WhatsApp(
    phone_id=os.environ["PEER_PHONE_ID"],
    app_secret=os.environ["PEER_APP_SECRET"],
    validate_updates=True,
    # pywa remembers an update as handled before its handler runs, so a
    # redelivery of one whose store failed would be acknowledged unstored;
    # the table's primary key drops real duplicates instead.
    skip_duplicate_updates=False,
)

# pywa logs and swallows an exception raised by a handler, then reports
# success; the route learns of a failed store through this instead, so it
# never acknowledges a message it did not store.
_store_failed: contextvars.ContextVar[bool] = contextvars.ContextVar("store_failed", default=False)


def _open(path: str) -> sqlite3.Connection:
    # Autocommit: each INSERT is its own transaction, committed when
    # execute() returns. The busy timeout covers the other workers' writes.
    db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS messages ("
        " id TEXT PRIMARY KEY,"
        " sender TEXT NOT NULL,"
        " name TEXT,"
        " body TEXT,"
        " sent_at INTEGER NOT NULL,"
        " received_at INTEGER NOT NULL)"
    )
    return db


_database = os.environ.get("PEER_DATABASE")
if _database:
    _db = _open(_database)

    @wa.on_message()
    def store(_: WhatsApp, msg: types.Message) -> None:
        try:
            # A redelivered message keeps its first row, as in our server.
            _db.execute(
                "INSERT OR IGNORE INTO messages (id, sender, name, body, sent_at, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    msg.id,
                    msg.from_user.wa_id or msg.from_user.bsuid,
                    msg.from_user.name,
                    msg.text,
                    int(msg.timestamp.timestamp()),
                    time.time_ns() // 1_000_000,
                ),
            )
        except Exception:
            _store_failed.set(True)
            raise

else:

    @wa.on_message()
    def ignore(_: WhatsApp, msg: types.Message) -> None:
        """Parsed by pywa, then dropped."""


@app.post(WEBHOOK_PATH)
async def webhook(request: Request) -> Response:
    body = await request.body()
    refused = wa.webhook_update_validator(body, request.headers.get("x-hub-signature-256"))
    if refused:
        return Response(refused[0], status_code=refused[1], media_type="text/plain")
    _store_failed.set(False)
    # Handled right here on the event loop, before the answer: one
    # connection, no thread hand-off, writes never overlap in one worker.
    content, status = wa.webhook_update_handler(body)
    if _store_failed.get():
        return Response("not stored", status_code=500, media_type="text/plain")
    return Response(content, status_code=status, media_type="text/plain")


@app.get("/ready")
async def ready() -> Response:
    # The worker's process id, so the bench can wait until every worker
    # takes connections before it opens its own.
    return Response(str(os.getpid()), media_type="text/plain")
