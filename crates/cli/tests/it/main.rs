//! The cli crate's integration tests, one binary (link time): one module per
//! capability or concern, the shared helpers beside them.

mod audit_checkpoints;
mod deploy;
mod deploy_config;
mod deploy_postgres_tls;
mod deploy_proxy;
mod multi_instance;
mod reliability_faults;
mod reliability_instances;
mod reliability_pg_restart;
mod support;
