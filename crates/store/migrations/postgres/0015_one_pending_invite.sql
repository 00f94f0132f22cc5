-- At most one pending invite per address, enforced by the database (issue 19 item 1):
-- two concurrent invites for one address cannot both be created, whatever the handler's
-- check saw. "Pending" for the index is "neither accepted, revoked nor closed"; an invite
-- that expired unused is closed (closed_at) when the next invite for its address is made,
-- so it still reads "expired" and no longer holds the address.
ALTER TABLE console_invites ADD COLUMN closed_at BIGINT;

-- Invites that expired unused: closed at their expiry.
UPDATE console_invites SET closed_at = expires_at
WHERE accepted_at IS NULL AND revoked_at IS NULL AND expires_at <= CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT);

-- Live duplicates (possible before this index): all but the newest per address revoked.
UPDATE console_invites SET revoked_at = CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)
WHERE accepted_at IS NULL AND revoked_at IS NULL AND closed_at IS NULL
  AND id NOT IN (
    SELECT MAX(id) FROM console_invites
    WHERE accepted_at IS NULL AND revoked_at IS NULL AND closed_at IS NULL
    GROUP BY email
  );

CREATE UNIQUE INDEX console_invites_one_pending ON console_invites (email)
WHERE accepted_at IS NULL AND revoked_at IS NULL AND closed_at IS NULL;
