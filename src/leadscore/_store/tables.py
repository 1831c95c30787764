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
    sa.UniqueConstraint("workspace", "trigger", "contact_id", "event_key"),
)

# One row per action of each new firing, written in the firing's transaction
# (the transactional outbox): a worker carries them out and updates status.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("seq", Serial, primary_key=True, autoincrement=True),
    sa.Column("firing", Serial, sa.ForeignKey("firings.seq"), nullable=False),
    sa.Column("workspace", sa.Text, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("action_index", sa.Integer, nullable=False),
    sa.Column("action", sa.JSON, nullable=False),  # the action as the model wrote it
    sa.Column("status", sa.Text, nullable=False),  # pending, then what the worker makes it
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_outbox_status", "status", "next_attempt_at"),
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
