-- Status checks and scheduled jobs (SPEC §10). Kept in step with ../sqlite/0006_status_jobs.sql.

-- One row per poll of one check by the `status-poll` job. Telemetry: kept 7 days.
-- status: ok | degraded (answered, but slow or with another 2xx/3xx) | down.
CREATE TABLE console_check_results (
    id          BIGSERIAL PRIMARY KEY,
    app         TEXT NOT NULL,
    check_name  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('ok', 'degraded', 'down')),
    http_status BIGINT,
    latency_ms  BIGINT NOT NULL,
    error       TEXT
);
CREATE INDEX console_check_results_check ON console_check_results(app, check_name, at);

-- One row per (job, scheduled tick): the instance whose INSERT lands runs the tick; every
-- other instance's INSERT ... ON CONFLICT DO NOTHING affects no row and it skips the tick.
CREATE TABLE console_job_leases (
    job         TEXT NOT NULL,
    tick        BIGINT NOT NULL,
    holder      TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    released_at BIGINT,
    PRIMARY KEY (job, tick)
);

-- Every run, scheduled or manual ("run now"), with its outcome.
CREATE TABLE console_job_runs (
    id          BIGSERIAL PRIMARY KEY,
    job         TEXT NOT NULL,
    tick        BIGINT NOT NULL,
    run_kind    TEXT NOT NULL CHECK (run_kind IN ('schedule', 'manual')),
    holder      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    duration_ms BIGINT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('running', 'ok', 'failed', 'refused')),
    message     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX console_job_runs_job ON console_job_runs(job, started_at);

-- "Run now" requests: any instance's scheduler claims one (claimed_by IS NULL -> set) and runs it.
CREATE TABLE console_job_requests (
    id           BIGSERIAL PRIMARY KEY,
    job          TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    requested_by TEXT NOT NULL,
    claimed_by   TEXT,
    claimed_at   BIGINT,
    run_id       BIGINT
);
CREATE INDEX console_job_requests_open ON console_job_requests(claimed_by, requested_at);

-- What the running schedulers plan: the jobs page reads "next run" from here.
CREATE TABLE console_job_schedules (
    job         TEXT PRIMARY KEY,
    schedule    TEXT NOT NULL,
    enabled     BIGINT NOT NULL,
    next_run_at BIGINT,
    holder      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
