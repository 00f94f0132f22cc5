-- How often OFREP evaluated each flag, and when last (issue 16 item 4). Bookkeeping, like
-- console_app_key_usage: counted in memory by each console instance and added here in one
-- batched upsert every few seconds (so several instances add up); no audit row.
-- last_evaluated_at is the flush time of the latest batch that counted the flag
-- (accurate to the flush interval), unix milliseconds.
CREATE TABLE console_flag_usage (
    app TEXT NOT NULL,
    flag_key TEXT NOT NULL,
    evaluations BIGINT NOT NULL DEFAULT 0,
    first_evaluated_at BIGINT NOT NULL,
    last_evaluated_at BIGINT NOT NULL,
    PRIMARY KEY (app, flag_key)
);
