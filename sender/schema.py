"""The manager's tables, created and changed only by these migrations."""

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from hooklab.shared.signing import generate_signing_key

migrations = Migrations("hooklab.sender")


@migrations()
def m001_webhooks_events_deliveries_attempts(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE webhooks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            url TEXT NOT NULL,
            event TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            secret TEXT NOT NULL,
            payload_format TEXT NOT NULL DEFAULT 'flat',
            timeout_s REAL NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            disabled_reason TEXT,
            disabled_at INTEGER
        )
        """
    )
    # An event is what was fired (or sent as a test); its deliveries are the outbox.
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            slug TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            test INTEGER NOT NULL DEFAULT 0,
            idempotency_key TEXT UNIQUE,
            request_hash TEXT
        )
        """
    )
    # The body is fixed when the event is fired, so every retry and redelivery of a delivery
    # sends the same bytes under the same message id (webhook-id).
    db.execute(
        """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
            webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
            message_id TEXT NOT NULL UNIQUE,
            event TEXT NOT NULL,
            test INTEGER NOT NULL DEFAULT 0,
            body TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            scheduled_attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER,
            claim_token TEXT,
            claim_expires_at INTEGER,
            created_at INTEGER NOT NULL,
            finished_at INTEGER,
            last_status_code INTEGER,
            last_error TEXT
        )
        """
    )
    db.execute("CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at)")
    db.execute("CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id)")
    db.execute("CREATE INDEX deliveries_event ON deliveries (event_id)")
    db.execute(
        """
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            trigger TEXT NOT NULL,
            worker TEXT,
            started_at INTEGER NOT NULL,
            finished_at INTEGER,
            duration_ms INTEGER,
            url TEXT NOT NULL,
            request_headers TEXT NOT NULL DEFAULT '[]',
            status_code INTEGER,
            ok INTEGER,
            error_kind TEXT,
            error TEXT,
            retry_after_s REAL,
            response_headers TEXT,
            response_body TEXT,
            response_body_size INTEGER,
            response_truncated INTEGER NOT NULL DEFAULT 0,
            UNIQUE (delivery_id, number)
        )
        """
    )


@migrations()
def m002_index_unfinished_attempts(db: Database) -> None:
    # The housekeeper looks for attempts whose sender died; only unfinished ones are indexed.
    db.execute(
        "CREATE INDEX attempts_unfinished ON attempts (started_at) WHERE finished_at IS NULL"
    )


@migrations()
def m003_signature_scheme_and_rotation(db: Database) -> None:
    # v1a signs with an ed25519 key kept here; a rotation keeps the previous secret (and
    # signing key) valid until previous_secret_expires_at, so receivers can switch over.
    db.execute("ALTER TABLE webhooks ADD COLUMN signature_scheme TEXT NOT NULL DEFAULT 'v1'")
    db.execute("ALTER TABLE webhooks ADD COLUMN signing_key TEXT")
    db.execute("ALTER TABLE webhooks ADD COLUMN previous_secret TEXT")
    db.execute("ALTER TABLE webhooks ADD COLUMN previous_signing_key TEXT")
    db.execute("ALTER TABLE webhooks ADD COLUMN previous_secret_expires_at INTEGER")
    # Every webhook has a signing key, so switching to v1a needs no extra step.
    for (webhook_id,) in db.execute("SELECT id FROM webhooks").fetchall():
        db.execute(
            "UPDATE webhooks SET signing_key = ? WHERE id = ?", (generate_signing_key(), webhook_id)
        )


@migrations()
def m004_redeliver_trigger(db: Database) -> None:
    # The attempt a person asks for is called what the UI and the API call it: a redelivery.
    db.execute("UPDATE attempts SET trigger = 'redeliver' WHERE trigger = 'manual'")


@migrations()
def m005_catalog_events(db: Database) -> None:
    # User events: added through the API or imported from an OpenAPI document. The built-in
    # events are code, not rows. `prefix` groups them on the Webhooks page.
    db.execute(
        """
        CREATE TABLE catalog_events (
            slug TEXT PRIMARY KEY,
            prefix TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            payload TEXT NOT NULL,
            schema TEXT,
            source TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX catalog_events_prefix ON catalog_events (prefix, slug)")


@migrations()
def m006_manual_trigger(db: Database) -> None:
    # design.md names the triggers scheduled, manual and test: a redelivery someone asked for
    # is `manual` again (m004 had called it `redeliver`).
    db.execute("UPDATE attempts SET trigger = 'manual' WHERE trigger = 'redeliver'")
