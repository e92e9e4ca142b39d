-- detente embedded store, schema version 2.
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

-- One row per pair of conflicting activities (activity_a < activity_b), status open | resolved.
CREATE TABLE IF NOT EXISTS conflicts (
    id          INTEGER PRIMARY KEY,
    activity_a  INTEGER NOT NULL REFERENCES owners (id),
    activity_b  INTEGER NOT NULL REFERENCES owners (id),
    status      TEXT NOT NULL,
    pairs       TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
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
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS tokens (
    hash       TEXT PRIMARY KEY,
    party_id   INTEGER REFERENCES parties (id),
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS tokens_party ON tokens (party_id);
