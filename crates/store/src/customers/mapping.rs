//! How a customers table maps onto a customer: table and column names, checked.

use std::collections::BTreeMap;

/// Is `s` safe to splice into SQL as a table or column name?
pub fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

/// Where the customer fields live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerMapping {
    pub table: String,
    pub id: String,
    pub email: String,
    pub name: String,
    pub status: String,
    pub created_at: String,
}

impl Default for CustomerMapping {
    fn default() -> Self {
        CustomerMapping {
            table: "customers".into(),
            id: "id".into(),
            email: "email".into(),
            name: "name".into(),
            status: "status".into(),
            created_at: "created_at".into(),
        }
    }
}

impl CustomerMapping {
    /// From `[customers] table` and `columns = { email = "email_address", … }`.
    pub fn from_config(
        table: &str,
        columns: &BTreeMap<String, String>,
    ) -> std::result::Result<Self, String> {
        let mut m = CustomerMapping {
            table: table.to_string(),
            ..Default::default()
        };
        for (field, column) in columns {
            let slot = match field.as_str() {
                "id" => &mut m.id,
                "email" => &mut m.email,
                "name" => &mut m.name,
                "status" => &mut m.status,
                "created_at" => &mut m.created_at,
                other => {
                    return Err(format!(
                        "[customers] columns: unknown field `{other}` (id, email, name, status, created_at)"
                    ));
                }
            };
            *slot = column.clone();
        }
        for (what, ident) in [
            ("table", &m.table),
            ("columns.id", &m.id),
            ("columns.email", &m.email),
            ("columns.name", &m.name),
            ("columns.status", &m.status),
            ("columns.created_at", &m.created_at),
        ] {
            if !valid_identifier(ident) {
                return Err(format!(
                    "[customers] {what} = `{ident}` is not a plain identifier (letters, digits and `_`, not starting with a digit)"
                ));
            }
        }
        Ok(m)
    }

    pub(super) fn select(&self) -> String {
        format!(
            "SELECT CAST({} AS TEXT) AS c_id, CAST({} AS TEXT) AS c_email, CAST({} AS TEXT) AS c_name, CAST({} AS TEXT) AS c_status, CAST({} AS TEXT) AS c_created FROM {}",
            self.id, self.email, self.name, self.status, self.created_at, self.table
        )
    }
}
