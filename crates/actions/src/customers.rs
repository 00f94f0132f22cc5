//! The customers database of a console (SPEC §9): its own connection, opened at start-up.

use raxx_core::config::Resolved;
use raxx_store::customers::CustomerDb;

/// The customers database of a console: `[customers]`, or the embedded fixture of its env.
/// Refuses (at start-up) the console's own database and unsafe table or column names.
pub fn open_customer_db(cfg: &Resolved) -> Result<CustomerDb, String> {
    CustomerDb::open(
        &cfg.config.database_url,
        cfg.env,
        cfg.config.customers.as_ref(),
    )
}
