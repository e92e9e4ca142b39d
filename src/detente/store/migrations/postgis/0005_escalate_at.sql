-- What is left to escalate (the embedded store's version 7; see store/schema.sql): a
-- conflict's deadline while a side has neither acknowledged nor been escalated.
ALTER TABLE conflicts ADD COLUMN escalate_at text;
UPDATE conflicts SET escalate_at = deadline WHERE status = 'open' AND
    (SELECT count(*) FROM conflict_parties s WHERE s.conflict_id = conflicts.id
     AND (s.acked_at IS NOT NULL OR s.escalated_at IS NOT NULL)) < 2;
DROP INDEX conflicts_deadline;
CREATE INDEX conflicts_escalate ON conflicts (escalate_at) WHERE status = 'open';
