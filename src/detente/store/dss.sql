-- ASTM F3548 DSS state (both backends run this file: SQLite as part of schema version 5,
-- PostgreSQL as migration 0002_dss). An entity reference points at the activity (an
-- operational intent) or the zone (a constraint) that holds its volumes; times in ns.
CREATE TABLE IF NOT EXISTS dss_refs (
    id              TEXT PRIMARY KEY,
    is_constraint   INTEGER NOT NULL,
    owner_id        BIGINT NOT NULL,
    manager         TEXT NOT NULL,
    version         INTEGER NOT NULL,
    ovn             TEXT NOT NULL,
    state           TEXT,
    uss_base_url    TEXT NOT NULL,
    subscription_id TEXT,
    t0              BIGINT NOT NULL,
    t1              BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS dss_refs_owner ON dss_refs (owner_id);
CREATE INDEX IF NOT EXISTS dss_refs_subscription ON dss_refs (subscription_id);

-- Subscriptions: one volume each (the union of the extents asked for), with its box in
-- unwrapped longitude for the search; the exact test runs on the footprint itself.
CREATE TABLE IF NOT EXISTS dss_subscriptions (
    id                 TEXT PRIMARY KEY,
    manager            TEXT NOT NULL,
    version            TEXT NOT NULL,
    notification_index INTEGER NOT NULL,
    uss_base_url       TEXT NOT NULL,
    notify_intents     INTEGER NOT NULL,
    notify_constraints INTEGER NOT NULL,
    implicit           INTEGER NOT NULL,
    geom               TEXT NOT NULL,
    radius             DOUBLE PRECISION NOT NULL,
    alt_lo             DOUBLE PRECISION NOT NULL,
    alt_hi             DOUBLE PRECISION NOT NULL,
    t0                 BIGINT NOT NULL,
    t1                 BIGINT NOT NULL,
    minx               DOUBLE PRECISION NOT NULL,
    miny               DOUBLE PRECISION NOT NULL,
    maxx               DOUBLE PRECISION NOT NULL,
    maxy               DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS dss_subscriptions_t1 ON dss_subscriptions (t1);
CREATE INDEX IF NOT EXISTS dss_subscriptions_manager ON dss_subscriptions (manager);

CREATE TABLE IF NOT EXISTS dss_availability (
    uss          TEXT PRIMARY KEY,
    availability TEXT NOT NULL,
    version      TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS dss_reports (
    id         TEXT PRIMARY KEY,
    reporter   TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
