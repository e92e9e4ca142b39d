-- detente embedded store, schema version 7 (versions 2 to 6 are upgraded by
-- 'detente db upgrade').
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- Activities and zones ("owners" of volumes). state: planned | active | ended | cancelled.
CREATE TABLE IF NOT EXISTS owners (
    id          INTEGER PRIMARY KEY,
    is_zone     INTEGER NOT NULL,
    party       TEXT NOT NULL,
    ext_id      TEXT NOT NULL,
    kind        TEXT,
    restriction TEXT,
    applies_to  TEXT,
    notes       TEXT,
    contact     TEXT,
    state       TEXT NOT NULL DEFAULT 'planned',
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (is_zone, party, ext_id)
);

CREATE TABLE IF NOT EXISTS volumes (
    id         INTEGER PRIMARY KEY,
    owner_id   INTEGER NOT NULL REFERENCES owners (id),
    is_zone    INTEGER NOT NULL,
    feature_id TEXT NOT NULL,
    kind       TEXT,
    geom       BLOB NOT NULL,
    radius     REAL NOT NULL,
    alt_lo     REAL NOT NULL,
    alt_hi     REAL NOT NULL,
    t0         INTEGER NOT NULL,
    t1         INTEGER NOT NULL,
    minx REAL NOT NULL, miny REAL NOT NULL, maxx REAL NOT NULL, maxy REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS volumes_owner ON volumes (owner_id);

-- Boxes in scaled units (see sqlite.py), rid = volume id * 2 (+1 for an antimeridian copy).
CREATE VIRTUAL TABLE IF NOT EXISTS activity_index USING rtree (rid, x0, x1, y0, y1, z0, z1, t0, t1);
CREATE VIRTUAL TABLE IF NOT EXISTS zone_index USING rtree (rid, x0, x1, y0, y1, z0, z1, t0, t1);
-- F3548 subscriptions' boxes (degrees, unwrapped longitude), rid = dss_subscriptions' rowid.
CREATE VIRTUAL TABLE IF NOT EXISTS dss_sub_index USING rtree (rid, x0, x1, y0, y1);

-- One row per pair of conflicting activities (activity_a < activity_b).
-- status: open | acknowledged | accepted | resolved | expired. starts/ends (ns): the
-- earliest start and latest end of the volumes in conflict; deadline: by when each
-- party must acknowledge; escalate_at: the deadline while a side has neither
-- acknowledged nor been escalated, else NULL (what a sweep looks for: overdue conflicts
-- already escalated stay open, and finding them all again every second cost seconds).
CREATE TABLE IF NOT EXISTS conflicts (
    id          INTEGER PRIMARY KEY,
    activity_a  INTEGER NOT NULL REFERENCES owners (id),
    activity_b  INTEGER NOT NULL REFERENCES owners (id),
    status      TEXT NOT NULL,
    pairs       TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    starts      INTEGER NOT NULL DEFAULT 0,
    ends        INTEGER NOT NULL DEFAULT 0,
    deadline    TEXT,
    escalate_at TEXT,
    UNIQUE (activity_a, activity_b)
);
CREATE INDEX IF NOT EXISTS conflicts_b ON conflicts (activity_b);

CREATE TABLE IF NOT EXISTS violations (
    id          INTEGER PRIMARY KEY,
    activity_id INTEGER NOT NULL REFERENCES owners (id),
    zone_id     INTEGER NOT NULL REFERENCES owners (id),
    volume      TEXT NOT NULL,
    zone_volume TEXT NOT NULL,
    restriction TEXT NOT NULL,
    overridden  INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS violations_activity ON violations (activity_id);
CREATE INDEX IF NOT EXISTS violations_zone ON violations (zone_id);

-- Parties and their API tokens. Only a token's SHA-256 is stored, and party_id NULL is an
-- admin token.
CREATE TABLE IF NOT EXISTS parties (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    contact    TEXT,
    created_at TEXT NOT NULL,
    escalation TEXT
);

CREATE TABLE IF NOT EXISTS tokens (
    hash       TEXT PRIMARY KEY,
    party_id   INTEGER REFERENCES parties (id),
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS tokens_party ON tokens (party_id);


-- Each party's side of a conflict: acknowledged, accepted, escalated (reset when the
-- conflict opens again or changes).
CREATE TABLE IF NOT EXISTS conflict_parties (
    conflict_id  INTEGER NOT NULL REFERENCES conflicts (id),
    party        TEXT NOT NULL,
    acked_at     TEXT,
    accepted_at  TEXT,
    escalated_at TEXT,
    PRIMARY KEY (conflict_id, party)
);
CREATE INDEX IF NOT EXISTS conflicts_escalate ON conflicts (escalate_at)
    WHERE status = 'open';
CREATE INDEX IF NOT EXISTS conflicts_ends ON conflicts (ends)
    WHERE status IN ('open', 'acknowledged', 'accepted');

-- The outbox: one row per event and recipient party, written in the transaction of
-- the change. id is the event's id everywhere (SSE id, webhook header).
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    party       TEXT NOT NULL,
    type        TEXT NOT NULL,
    conflict_id INTEGER,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_party ON events (party, id);
CREATE INDEX IF NOT EXISTS events_conflict ON events (conflict_id) WHERE conflict_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS webhooks (
    id         INTEGER PRIMARY KEY,
    party      TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    types      TEXT,
    created_at TEXT NOT NULL,
    deleted_at TEXT,
    lease_until REAL  -- Unix seconds: a dispatcher holds its deliveries until then
);

-- What each webhook still owes or has delivered; next_at in Unix seconds.
CREATE TABLE IF NOT EXISTS deliveries (
    webhook_id   INTEGER NOT NULL REFERENCES webhooks (id),
    event_id     INTEGER NOT NULL REFERENCES events (id),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      REAL NOT NULL,
    delivered_at TEXT,
    failed_at    TEXT,
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (webhook_id, event_id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

-- Every delivery attempt: the log a party reads.
CREATE TABLE IF NOT EXISTS attempts (
    id         INTEGER PRIMARY KEY,
    webhook_id INTEGER NOT NULL,
    event_id   INTEGER NOT NULL,
    at         TEXT NOT NULL,
    status     INTEGER,
    error      TEXT,
    ms         REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_webhook ON attempts (webhook_id, id);

-- Hotline: a thread per conflict (conflict_id set) or per pair of parties.
CREATE TABLE IF NOT EXISTS threads (
    id          INTEGER PRIMARY KEY,
    conflict_id INTEGER UNIQUE,
    party_a     TEXT NOT NULL,
    party_b     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS threads_direct ON threads (party_a, party_b)
    WHERE conflict_id IS NULL;

CREATE TABLE IF NOT EXISTS messages (
    id         INTEGER PRIMARY KEY,
    thread_id  INTEGER NOT NULL REFERENCES threads (id),
    sender     TEXT NOT NULL,
    body       TEXT NOT NULL,
    corrects   INTEGER REFERENCES messages (id),
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_thread ON messages (thread_id, id);
CREATE TRIGGER IF NOT EXISTS messages_immutable BEFORE UPDATE ON messages
BEGIN SELECT RAISE(ABORT, 'messages are immutable: a correction is a new message'); END;
CREATE TRIGGER IF NOT EXISTS messages_kept BEFORE DELETE ON messages
BEGIN SELECT RAISE(ABORT, 'messages are immutable: a correction is a new message'); END;

CREATE TABLE IF NOT EXISTS receipts (
    message_id   INTEGER NOT NULL REFERENCES messages (id),
    party        TEXT NOT NULL,
    delivered_at TEXT,
    read_at      TEXT,
    PRIMARY KEY (message_id, party)
);

-- Incidents: status open | under-review | closed.
CREATE TABLE IF NOT EXISTS incidents (
    id          INTEGER PRIMARY KEY,
    reporter    TEXT NOT NULL,
    location    TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    description TEXT NOT NULL,
    severity    TEXT NOT NULL,
    status      TEXT NOT NULL,
    parties     TEXT NOT NULL,
    activities  TEXT NOT NULL,
    conflicts   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS incident_parties (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    party       TEXT NOT NULL,
    PRIMARY KEY (party, incident_id)
);

-- The audit log: append-only, each entry chained to the previous one by SHA-256.
CREATE TABLE IF NOT EXISTS audit (
    seq     INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    before  TEXT,
    after   TEXT,
    detail  TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject, seq);
CREATE TRIGGER IF NOT EXISTS audit_immutable BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_kept BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Live positions (schema version 6). One row per report, appended: ids follow arrival,
-- so old rows are pruned by id, and there is no other index (an index by activity
-- dirties a page per activity per batch: 60 ms per 1,000 reports here, against 4 ms).
-- Each row points to the previous report of its activity (prev_id, 0: none), so a
-- track is read by walking back from its newest report (tracking.head). t: ns;
-- received: Unix seconds; speed, heading: NULL if not reported.
CREATE TABLE IF NOT EXISTS positions (
    id       INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL,
    prev_id  INTEGER NOT NULL,
    t        INTEGER NOT NULL,
    lon      REAL NOT NULL,
    lat      REAL NOT NULL,
    alt      REAL NOT NULL,
    hacc     REAL NOT NULL,
    vacc     REAL NOT NULL,
    speed    REAL,
    heading  REAL,
    received REAL NOT NULL
);
-- Activities that have reported: their conformance (conforming | nonconforming |
-- contingent) since t = since (ns), and their newest report (head: a positions id,
-- saved every 10 s; meta 'track_heads_at' says up to which id, and the rows
-- after it are read again on start).
CREATE TABLE IF NOT EXISTS tracking (
    owner_id   INTEGER PRIMARY KEY REFERENCES owners (id),
    status     TEXT NOT NULL,
    since      INTEGER NOT NULL,
    head       INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
-- Who may see whose track, from when (since, ns), while closed_at is NULL.
CREATE TABLE IF NOT EXISTS track_shares (
    id        INTEGER PRIMARY KEY,
    owner_id  INTEGER NOT NULL REFERENCES owners (id),
    party     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    since     INTEGER NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT
);
CREATE INDEX IF NOT EXISTS track_shares_open ON track_shares (id) WHERE closed_at IS NULL;
CREATE INDEX IF NOT EXISTS owners_active ON owners (id) WHERE state = 'active';
