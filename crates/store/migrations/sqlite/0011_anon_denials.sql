-- Anonymous gate denials are counted here, outside the chain, and flushed into the audit
-- log as one chained summary row per (interval, source, route template, code): so
-- unauthenticated traffic cannot flood the chain (SPEC §6, issue 19 item 9). Every key
-- column holds a server-side value (an interval start, an IP, a manifest template, a
-- denial code), never a raw request path. See crates/store/src/anon_denials.rs.
CREATE TABLE console_anon_denials (
    bucket   BIGINT NOT NULL,
    source   TEXT NOT NULL,
    route    TEXT NOT NULL,
    code     TEXT NOT NULL,
    action   TEXT NOT NULL,
    count    BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at  BIGINT NOT NULL,
    PRIMARY KEY (bucket, source, route, code)
);
