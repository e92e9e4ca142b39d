-- F3548 subscriptions found by box: a GiST index on each one's box (degrees, unwrapped
-- longitude), which the subscription search's && condition uses.
CREATE INDEX IF NOT EXISTS dss_subscriptions_box ON dss_subscriptions
    USING gist (box(point(minx, miny), point(maxx, maxy)));
