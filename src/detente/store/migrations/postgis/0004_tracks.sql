-- Live positions, conformance status and track shares (the embedded store's schema
-- version 6; see store/schema.sql for the comments on each table).
CREATE TABLE positions (
    id       bigint PRIMARY KEY,
    owner_id bigint NOT NULL,
    prev_id  bigint NOT NULL,
    t        bigint NOT NULL,
    lon      float8 NOT NULL,
    lat      float8 NOT NULL,
    alt      float8 NOT NULL,
    hacc     float8 NOT NULL,
    vacc     float8 NOT NULL,
    speed    float8,
    heading  float8,
    received float8 NOT NULL
);
CREATE TABLE tracking (
    owner_id   bigint PRIMARY KEY REFERENCES owners (id),
    status     text NOT NULL,
    since      bigint NOT NULL,
    head       bigint NOT NULL DEFAULT 0,
    updated_at text NOT NULL
);
CREATE TABLE track_shares (
    id        bigint PRIMARY KEY,
    owner_id  bigint NOT NULL REFERENCES owners (id),
    party     text NOT NULL,
    reason    text NOT NULL,
    subject   text NOT NULL,
    since     bigint NOT NULL,
    opened_at text NOT NULL,
    closed_at text
);
CREATE INDEX track_shares_open ON track_shares (id) WHERE closed_at IS NULL;
CREATE INDEX owners_active ON owners (id) WHERE state = 'active';
