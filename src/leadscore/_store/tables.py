"""The schema, in SQLAlchemy Core, the same on PostgreSQL and SQLite.

Instants are integer microseconds since the epoch (BIGINT), as in the engine:
exact, ordered, and the same on both backends. The migrations in
`migrations/versions/` create exactly this (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa

# Constraint and index names fixed by convention, so that later migrations can
# name them on both backends.
metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# An increasing key: BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY
# is the auto-numbered rowid.
Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# Model documents as written (YAML or JSON text), numbered per workspace; at
# most one active.
models = sa.Table(
    "models",
    metadata,
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    # The model's `name`, for listings without compiling every version (null
    # for versions stored before schema 0003).
    sa.Column("name", sa.Text),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index(
        "ix_models_active",
        "workspace",
        unique=True,
        postgresql_where=sa.text("active"),
        sqlite_where=sa.text("active"),
    ),
)

# The log: every accepted event, first copy of each id. An event's owner is
# not stored: it is its contact, or for an event with only an anonymous id the
# winner of that id's link (identity_links), else the anonymous profile. A
# link that changes hands is then one row to update rather than events to move.
events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", Serial, primary_key=True, autoincrement=True),  # arrival order
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("id", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("contact_id", sa.Text),
    sa.Column("anonymous_id", sa.Text),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    # The canonical JSON text of the event (Event.to_json, keys sorted): an
    # exact copy on both backends, with any string a JSON text may hold.
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("received_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("workspace", "id"),
    sa.Index("ix_events_contact", "workspace", "contact_id", "timestamp"),
    # Events that carry only an anonymous id: they follow that id's link.
    # Reports: the contacts with an event of a type (conversions).
    sa.Index("ix_events_type", "workspace", "type", "contact_id"),
    sa.Index(
        "ix_events_anonymous_only",
        "workspace",
        "anonymous_id",
        "timestamp",
        postgresql_where=sa.text("contact_id IS NULL"),
        sqlite_where=sa.text("contact_id IS NULL"),
    ),
    # A `seq` is never given twice, even after the newest events were erased
    # (SQLite would otherwise reuse the largest rowid): readers that marked
    # the log at a `seq` count on every later event being above it (bulk.py).
    sqlite_autoincrement=True,
)

# The winning link of each anonymous id: the first event in (timestamp, id)
# order that carried it with a contact id (spec 1). The other candidates are
# the events with both ids; the winner only ever moves to an earlier one, so
# this row is all that a new candidate is compared with.
identity_links = sa.Table(
    "identity_links",
    metadata,
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("anonymous_id", sa.Text, primary_key=True),
    sa.Column("contact_id", sa.Text, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Index("ix_identity_links_contact", "workspace", "contact_id"),
)

# The engine's state of every owner (an identified contact, or an anonymous
# profile), as of all its stored events, under the model version named. The
# columns after `state` copy parts of it for queries.
owners = sa.Table(
    "owners",
    metadata,
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("identified", sa.Boolean, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),  # the contact id or the anonymous id
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("state", sa.JSON, nullable=False),  # ContactState.to_json
    sa.Column("fit", sa.Integer, nullable=False),
    sa.Column("grade", sa.Text),
    sa.Column("stage", sa.Text),
    sa.Column("stage_entered_at", sa.BigInteger),
    sa.Column("last_event_at", sa.BigInteger, nullable=False),
    # The engagement score as of T is clamp(decaying * 2^(-(T - ref) / H) + flat),
    # H the model's half-life in microseconds: computable in SQL at read time.
    sa.Column("ref", sa.BigInteger, nullable=False),
    sa.Column("decaying", sa.Double, nullable=False),
    sa.Column("flat", sa.Double, nullable=False),
    # The contact's text traits in lower case, one a line, cut at
    # owners.SEARCH_BYTES: what the web app's search looks in (null in rows
    # written before migration 0005 until their next write).
    sa.Column("search", sa.Text, nullable=True),
    # The web app's ranked lists read these columns of every contact: an
    # index holding them all is read instead of the rows, whose states make
    # them large (a scan of 50,000 rows: ~80 ms instead of ~280 ms).
    sa.Index(
        "ix_owners_ranking",
        "workspace",
        "identified",
        "model_version",
        "key",
        "ref",
        "decaying",
        "flat",
        "fit",
        "grade",
        "stage",
        "last_event_at",
        "search",
    ),
)

# Each firing recorded once: the first time it appears in a contact's
# history. `event_key` is the event id, or '' for a `once` trigger, which is
# carried out once per contact whatever event a late event moves it to.
firings = sa.Table(
    "firings",
    metadata,
    sa.Column("seq", Serial, primary_key=True, autoincrement=True),
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("contact_id", sa.Text, nullable=False),
    sa.Column("event_key", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("recorded_at", sa.BigInteger, nullable=False),
    # True for a firing that history produced when a model version was
    # activated: recorded as carried out, so that it is never queued, and no
    # outbox row. A new model must not page sales about last year's visits.
    sa.Column("history", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("workspace", "trigger", "contact_id", "event_key"),
    # A contact's firings: its actions carried out in order, erasure, export.
    sa.Index("ix_firings_contact", "workspace", "contact_id"),
)

# One row per action of each new firing, written in the firing's transaction
# (the transactional outbox): a worker carries them out (outbox.py) and
# updates status: pending -> done, or for a webhook that fails, failed (to
# be retried at next_attempt_at) and after the last attempt dead. A webhook
# row is also "a delivery": its id is the delivery's idempotency key.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("seq", Serial, primary_key=True, autoincrement=True),
    sa.Column("firing", Serial, sa.ForeignKey("firings.seq"), nullable=False),
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("action_index", sa.Integer, nullable=False),
    sa.Column("action", sa.JSON, nullable=False),  # the action as the model wrote it
    sa.Column("status", sa.Text, nullable=False),  # pending, failed, done or dead
    sa.Column("attempts", sa.Integer, nullable=False),  # attempts since queued or redelivered
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # The action's kind (webhook, assign, add_tag, remove_tag): the key of `action`.
    sa.Column("kind", sa.Text, nullable=False),
    # A worker's claim: until lease_until no other worker takes the row. A
    # worker that dies mid-delivery loses it when the lease runs out.
    sa.Column("lease_owner", sa.Text),
    sa.Column("lease_until", sa.BigInteger),
    sa.Column("done_at", sa.BigInteger),
    sa.Column("last_error", sa.Text),
    # A webhook's body, exactly as sent: built at the first attempt and then
    # kept, so that every retry sends the same bytes under the same key.
    sa.Column("payload", sa.Text),
    sa.Index("ix_outbox_status", "status", "next_attempt_at"),
    sa.Index("ix_outbox_firing", "firing"),
    sa.Index("ix_outbox_workspace_kind", "workspace", "kind", "status"),
    # A `seq` is never given twice, even after the newest rows were erased
    # (SQLite would otherwise reuse the largest rowid): it is the delivery's
    # id, the Idempotency-Key receivers keep, and workers record their
    # attempts by it (migration 0007).
    sqlite_autoincrement=True,
)

# Every attempt at delivering a webhook, for the deliveries log: when, how
# long, what came back. Response bodies are not kept (they may hold anything).
delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("seq", Serial, primary_key=True, autoincrement=True),
    sa.Column("outbox", Serial, sa.ForeignKey("outbox.seq"), nullable=False),
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),  # 1, 2... over the delivery's whole life
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("duration", sa.BigInteger, nullable=False),  # microseconds
    sa.Column("status_code", sa.Integer),  # null when no answer came
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),  # why it failed; null when ok
    # Where it was sent (a delivery follows its trigger's webhook, outbox.py);
    # null for attempts logged before migration 0008.
    sa.Column("url", sa.Text),
    sa.Index("ix_delivery_attempts_outbox", "outbox"),
    # Failures are counted for /metrics: only they are indexed.
    sa.Index(
        "ix_delivery_attempts_failed",
        "workspace",
        postgresql_where=sa.text("NOT ok"),
        sqlite_where=sa.text("NOT ok"),
    ),
    sqlite_autoincrement=True,  # as the outbox's (migration 0007)
)

# Labels put on contacts by add_tag and taken off by remove_tag (not tag scores).
contact_tags = sa.Table(
    "contact_tags",
    metadata,
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("contact_id", sa.Text, primary_key=True),
    sa.Column("tag", sa.Text, primary_key=True),
    sa.Column("added_at", sa.BigInteger, nullable=False),
)

# The owner (a sales rep) an assign action gave each contact; the last one wins.
assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("contact_id", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("assigned_at", sa.BigInteger, nullable=False),
    sa.Index("ix_assignments_owner", "workspace", "owner"),
)

# Round-robin rotations: how many contacts each (workspace, trigger, owner
# list) has assigned so far. The next owner is owners[turns % len(owners)],
# and turns goes up by one in the assigning transaction (an upsert), so any
# number of workers, and restarts, continue one rotation.
rotations = sa.Table(
    "rotations",
    metadata,
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("trigger", sa.Text, primary_key=True),
    sa.Column("owners", sa.Text, primary_key=True),  # the owner list as JSON text
    sa.Column("turns", sa.BigInteger, nullable=False),
)

# The workspace's webhook signing secret: signs the webhooks whose action
# names no `secret` of its own. Kept as is (HMAC needs it), shown to admin keys.
signing_secrets = sa.Table(
    "signing_secrets",
    metadata,
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# API keys. A key is `lsk_<id>_<secret>`: `id` is public (it names the key in
# listings and logs), the secret is stored only as a hash (see keys.py).
# Revoking sets `revoked_at`; the row stays, so a listing shows what existed.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("secret_hash", sa.LargeBinary, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),  # write, read or admin
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.CheckConstraint("scope IN ('write', 'read', 'admin')", name="scope"),
    sa.Index("ix_api_keys_workspace", "workspace"),
)

# Model activations: making a version active rescores every owner of the
# workspace in the background (activation.py). A row is the job and its
# progress; `lease_until` is how long the process running it may still be
# trusted to be alive, so another process resumes a job whose runner died.
activations = sa.Table(
    "activations",
    metadata,
    sa.Column("id", Serial, primary_key=True, autoincrement=True),
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # running, done, superseded or failed
    sa.Column("total", sa.Integer, nullable=False),  # owners to rescore, counted at the start
    sa.Column("rescored", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("finished_at", sa.BigInteger),
    sa.Column("lease_until", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.CheckConstraint("status IN ('running', 'done', 'superseded', 'failed')", name="status"),
    sa.Index("ix_activations_workspace", "workspace"),
    sa.Index("ix_activations_status", "status"),
)

# People who sign in to the web app, each in one workspace with one role
# (sales, marketer, admin; see _store/users.py). Passwords are argon2id hashes.
users = sa.Table(
    "users",
    metadata,
    sa.Column("email", sa.Text, primary_key=True),  # lower case
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("disabled_at", sa.BigInteger, nullable=True),
    sa.CheckConstraint("role IN ('admin', 'marketer', 'sales')", name="role"),
    sa.Index("ix_users_workspace", "workspace"),
)

# Signed-in sessions, server side so that signing out (or disabling a user)
# revokes them at once. The cookie holds a random token; only its hash is kept.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("token_hash", sa.LargeBinary, primary_key=True),
    sa.Column("email", sa.Text, sa.ForeignKey("users.email"), nullable=False),
    sa.Column("csrf", sa.Text, nullable=False),  # the token every form and POST must carry
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ix_web_sessions_email", "email"),
)

# Failed sign-ins, by subject ("email:..." or "ip:..."), for rate limiting
# that holds across server processes and restarts.
signin_failures = sa.Table(
    "signin_failures",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Index("ix_signin_failures_subject", "subject", "at"),
)
