-- RBAC V2 seed (SPEC §4): the role catalogue, the two env admin groups and their grants.
-- Staging grants are all env_scope = staging and never an admin role; prod grants are env_scope = prod.

INSERT INTO console_roles (name) VALUES
    ('console-flag-reader'),
    ('console-flag-user'),
    ('console-flag-admin'),
    ('console-token-reader'),
    ('console-token-user'),
    ('console-token-admin'),
    ('console-audit-reader'),
    ('console-audit-user'),
    ('console-audit-admin'),
    ('console-invite-reader'),
    ('console-invite-user'),
    ('console-invite-admin'),
    ('console-customer-reader'),
    ('console-customer-user'),
    ('console-customer-admin'),
    ('console-session-reader'),
    ('console-session-user'),
    ('console-session-admin'),
    ('console-job-reader'),
    ('console-job-user'),
    ('console-job-admin');

INSERT INTO console_groups (name, description) VALUES
    ('staging-admins', 'Operators of the staging console: observe staging, exercise staging infrastructure'),
    ('production-admins', 'Operators of the prod console: every prod-affecting write');

INSERT INTO console_admin_group_roles (group_name, role, env_scope) VALUES
    ('staging-admins', 'console-flag-reader', 'staging'),
    ('staging-admins', 'console-token-user', 'staging'),
    ('staging-admins', 'console-audit-user', 'staging'),
    ('staging-admins', 'console-customer-reader', 'staging'),
    ('staging-admins', 'console-job-user', 'staging'),
    ('production-admins', 'console-flag-admin', 'prod'),
    ('production-admins', 'console-token-admin', 'prod'),
    ('production-admins', 'console-audit-user', 'prod'),
    ('production-admins', 'console-invite-admin', 'prod'),
    ('production-admins', 'console-customer-admin', 'prod'),
    ('production-admins', 'console-session-admin', 'prod'),
    ('production-admins', 'console-job-admin', 'prod');
