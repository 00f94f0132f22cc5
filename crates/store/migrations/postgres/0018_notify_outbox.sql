-- Notifications waiting to be delivered (issue 16 item 5). A row is written in the same
-- transaction as the event it reports (so a rolled-back change sends nothing) and
-- delivered later by the notify-delivery job, with retries and back-off. The target's URL
-- is not stored: rows name the [[notify]] target, whose URL stays in the config.
CREATE TABLE console_notify_outbox (
    id BIGSERIAL PRIMARY KEY,
    target TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    gave_up_at BIGINT,
    last_status BIGINT,
    last_error TEXT
);
CREATE INDEX console_notify_outbox_due ON console_notify_outbox(next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
