-- Frozen reviews and restore promotions (issue 16), kept in step across sqlite/postgres.
-- kind: 'staging' (flags from the staging console) or 'restore' (only enabled = true of
--   the prod definition, after a kill switch).
-- base_flags: JSON {flag key: prod definition the promotion was based on, or null when the
--   flag was absent from prod}, read at queue time.
-- review: JSON list of raxx_core::flags::FlagReview (base against proposed, both sides in
--   full), frozen at queue time; review_hash: its SHA-256, which audit rows reference.
-- All three are NULL for promotions queued before this migration: their pages rebuild the
-- base from the flag history, and say so.
ALTER TABLE console_flag_promotions ADD COLUMN kind TEXT NOT NULL DEFAULT 'staging' CHECK (kind IN ('staging', 'restore'));
ALTER TABLE console_flag_promotions ADD COLUMN base_flags TEXT;
ALTER TABLE console_flag_promotions ADD COLUMN review TEXT;
ALTER TABLE console_flag_promotions ADD COLUMN review_hash TEXT;
