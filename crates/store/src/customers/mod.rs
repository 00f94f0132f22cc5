//! The customers database (SPEC §9): a connection of its own per console, never the
//! console's database and never the other env's.
//!
//! Table and column names come from config and are spliced into SQL, so each must be a
//! plain identifier (`[A-Za-z_][A-Za-z0-9_]*`); every value is bound. Columns are read as
//! `CAST(col AS TEXT)`, so an integer or UUID id and an integer or timestamp `created_at`
//! all work on both backends.
//!
//! Without `[customers]` the console uses an embedded fixture database beside its own
//! (`customers-<env>.db`), seeded with fake accounts of its env and stamped with the env
//! so that one env's fixture is never opened by the other env's console.

pub mod db;
pub mod fixture;
pub mod mapping;

pub use db::*;
pub use fixture::*;
pub use mapping::*;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

/// The status values a suspend and a reactivate write.
pub const ACTIVE: &str = "active";

pub const SUSPENDED: &str = "suspended";

#[derive(Debug, thiserror::Error)]
pub enum CustomersError {
    /// The database is down, or the table or columns do not match the config.
    #[error("{0}")]
    Unavailable(String),
    #[error("customer {0} was not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
}

pub type Result<T, E = CustomersError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    pub id: String,
    pub email: String,
    pub name: String,
    pub status: String,
    /// As the database renders it (unix ms for the fixture).
    pub created_at: String,
}

fn customer(row: &AnyRow) -> std::result::Result<Customer, sqlx::Error> {
    let text = |c: &str| -> std::result::Result<String, sqlx::Error> {
        Ok(row.try_get::<Option<String>, _>(c)?.unwrap_or_default())
    };
    Ok(Customer {
        id: text("c_id")?,
        email: text("c_email")?,
        name: text("c_name")?,
        status: text("c_status")?,
        created_at: text("c_created")?,
    })
}

/// What an operator does to a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerChange {
    Suspend,
    Reactivate,
    Email(String),
}

impl CustomerChange {
    /// The audit action.
    pub fn action(&self) -> &'static str {
        match self {
            CustomerChange::Suspend => "customer.suspend",
            CustomerChange::Reactivate => "customer.reactivate",
            CustomerChange::Email(_) => "customer.change_email",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use raxx_core::Env;

    #[test]
    fn identifiers_are_plain_names_only() {
        for ok in ["customers", "_x", "Email_Address2", "a"] {
            assert!(valid_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "cust omers",
            "customers;--",
            "email\"",
            "a.b",
            "naïve",
            "x'",
            &"a".repeat(64),
        ] {
            assert!(!valid_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn mapping_rejects_unknown_fields_and_unsafe_names() {
        let mut cols = BTreeMap::new();
        cols.insert("email".to_string(), "email_address".to_string());
        let m = CustomerMapping::from_config("users", &cols).unwrap();
        assert_eq!(m.email, "email_address");
        assert_eq!(m.table, "users");
        assert_eq!(m.id, "id");
        cols.insert("name".into(), "name); DROP TABLE users; --".into());
        let e = CustomerMapping::from_config("users", &cols).unwrap_err();
        assert!(e.contains("columns.name"), "{e}");
        let mut cols = BTreeMap::new();
        cols.insert("phone".to_string(), "phone".to_string());
        assert!(
            CustomerMapping::from_config("users", &cols)
                .unwrap_err()
                .contains("unknown field `phone`")
        );
        assert!(CustomerMapping::from_config("users x", &BTreeMap::new()).is_err());
    }

    #[test]
    fn the_same_database_is_recognised_however_it_is_written() {
        let cases = [
            (
                "sqlite://data/console.db",
                "sqlite:data/console.db?mode=rwc",
                true,
            ),
            (
                "sqlite://data/console.db",
                "sqlite://data/customers.db",
                false,
            ),
            (
                "postgres://u:pw@db:5432/console",
                "postgres://other@DB/console",
                true,
            ),
            (
                "postgres://u@localhost/console",
                "postgresql://u@127.0.0.1:5432/console?sslmode=require",
                true,
            ),
            (
                "postgres://u@db/console",
                "postgres://u@db/customers",
                false,
            ),
            (
                "postgres://u@db:5433/console",
                "postgres://u@db/console",
                false,
            ),
            ("sqlite://data/console.db", "postgres://u@db/console", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(same_database(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn like_wildcards_in_a_search_are_literal() {
        assert_eq!(escape_like("a%b_c!d"), "a!%b!_c!!d");
        assert_eq!(escape_like("' or 1=1 --"), "' or 1=1 --");
    }

    #[test]
    fn the_fixture_sits_beside_the_console_database_per_env() {
        assert_eq!(
            fixture_path("sqlite://demo-data/staging.db", Env::Staging),
            PathBuf::from("demo-data/customers-staging.db")
        );
        assert_eq!(
            fixture_path("sqlite://data/console.db?mode=rwc", Env::Prod),
            PathBuf::from("data/customers-prod.db")
        );
        assert_eq!(
            fixture_path("postgres://db/console", Env::Prod),
            PathBuf::from("data/customers-prod.db")
        );
        let staging: Vec<_> = fixture_rows(Env::Staging).iter().map(|r| r.1).collect();
        assert!(
            fixture_rows(Env::Prod)
                .iter()
                .all(|r| !staging.contains(&r.1))
        );
    }
}
