-- Sign-in throttling counts recent failed sign-ins per IP from the audit log itself
-- (failures per account use console_audit_target). See docs/decisions.md.
CREATE INDEX console_audit_ip ON console_audit_log(ip, at);
