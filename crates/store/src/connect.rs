//! Reaching PostgreSQL as a deployed console must (SPEC §11 Deployment, docs/deploy.md):
//! TLS options read from the URL as libpq reads them, checked before anything is
//! contacted, and connection errors split into those that heal (retry with back-off) and
//! those that never will (one line saying what to fix, at once).

use sqlx::error::DatabaseError;

use crate::StoreError;

/// Make `ring` the process's rustls provider. sqlx's `verify-ca` builds its verifier from
/// the process default, which rustls cannot pick by itself when both `ring` and `aws-lc-rs`
/// are compiled in (they are: other crates enable the latter); it would panic.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err: a provider is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// libpq's `sslmode`, as passed on to sqlx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str, setting: &str) -> Result<SslMode, StoreError> {
        Ok(match value.trim().to_ascii_lowercase().as_str() {
            "disable" => SslMode::Disable,
            // libpq's `allow` tries plaintext first, then TLS; sqlx has no such mode and
            // would treat it as `disable`. `prefer` connects wherever `allow` would.
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(StoreError::Invalid(format!(
                    "{setting}: unknown sslmode `{value}`: use disable, allow, prefer, require, verify-ca or verify-full"
                )));
            }
        })
    }
}

/// The URL sqlx is given for a PostgreSQL `url` (the database named `setting` in
/// messages): `sslmode` and `sslrootcert` from the URL, else from `PGSSLMODE` and
/// `PGSSLROOTCERT` (read through `var`), resolved as libpq does —
/// `require` with a root certificate verifies the chain like `verify-ca`;
/// `sslrootcert=system` means the well-known public CAs and needs `verify-full` (its
/// default). The root certificate file must exist and hold a PEM certificate.
/// Refusals are one line naming the setting.
pub fn postgres_url(
    url: &str,
    setting: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<String, StoreError> {
    install_tls_provider();
    let mut parsed = url::Url::parse(url.trim()).map_err(|e| {
        StoreError::Invalid(format!(
            "{setting} is not a valid URL ({e}): write it as postgres://user:password@host:5432/database"
        ))
    })?;
    let mut mode = None;
    let mut root = None;
    let mut rest = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match &*k {
            "sslmode" | "ssl-mode" => mode = Some(v.into_owned()),
            "sslrootcert" | "ssl-root-cert" | "ssl-ca" => root = Some(v.into_owned()),
            _ => rest.push((k.into_owned(), v.into_owned())),
        }
    }
    let mode = match (mode, var("PGSSLMODE").filter(|v| !v.trim().is_empty())) {
        (Some(m), _) => Some(SslMode::parse(&m, setting)?),
        (None, Some(m)) => Some(SslMode::parse(&m, "PGSSLMODE")?),
        (None, None) => None,
    };
    let (root, root_setting) = match root {
        Some(r) => (Some(r), setting.to_string()),
        None => (
            var("PGSSLROOTCERT").filter(|v| !v.trim().is_empty()),
            "PGSSLROOTCERT".to_string(),
        ),
    };
    let (mode, root) = match root.as_deref().map(str::trim) {
        None => (mode.unwrap_or(SslMode::Prefer), None),
        Some("system") => match mode {
            None | Some(SslMode::VerifyFull) => (SslMode::VerifyFull, None),
            Some(m) => {
                return Err(StoreError::Invalid(format!(
                    "{root_setting}: sslrootcert=system needs sslmode=verify-full (got sslmode={})",
                    m.as_str()
                )));
            }
        },
        Some(path) => {
            check_root_cert(path, &root_setting)?;
            let mode = match mode.unwrap_or(SslMode::Prefer) {
                SslMode::Require => SslMode::VerifyCa,
                m => m,
            };
            (mode, Some(path.to_string()))
        }
    };
    {
        let mut q = parsed.query_pairs_mut();
        q.clear();
        q.extend_pairs(rest);
        q.append_pair("sslmode", mode.as_str());
        if let Some(r) = root {
            q.append_pair("sslrootcert", &r);
        }
    }
    Ok(parsed.to_string())
}

fn check_root_cert(path: &str, setting: &str) -> Result<(), StoreError> {
    let text = std::fs::read(path).map_err(|e| {
        StoreError::Invalid(format!(
            "{setting}: sslrootcert `{path}` cannot be read: {e}"
        ))
    })?;
    if !text
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(StoreError::Invalid(format!(
            "{setting}: sslrootcert `{path}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(())
}

/// Will this connection error go away by itself? `None` for errors worth retrying
/// (refused, reset, timed out, the server starting up or out of connection slots);
/// otherwise the one line that says what to fix in `setting`.
pub fn cannot_heal(e: &sqlx::Error, setting: &str) -> Option<String> {
    match e {
        sqlx::Error::Configuration(e) => Some(format!("{setting} is not usable: {e}")),
        sqlx::Error::Tls(e) if e.to_string().contains("does not support TLS") => Some(format!(
            "the server does not offer TLS but {setting} asks for it (sslmode): turn ssl on in the server or use sslmode=prefer"
        )),
        sqlx::Error::Tls(e) => Some(format!(
            "TLS to the database failed: {e}; check sslmode and sslrootcert in {setting}"
        )),
        // rustls reports a refused certificate as InvalidData from the handshake's I/O.
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => Some(format!(
            "the TLS handshake with the database failed: {e}; check sslmode, sslrootcert and the host name in {setting} against the server's certificate"
        )),
        sqlx::Error::Protocol(m) => Some(format!(
            "the server at {setting}'s host and port did not answer as PostgreSQL ({m})"
        )),
        sqlx::Error::Database(d) => database_cannot_heal(&**d, setting),
        _ => None,
    }
}

/// Like [`cannot_heal`], but only for errors that can only come from connecting (login,
/// database name, TLS, the URL): for a query that may also fail on its own SQL.
pub fn refused_connection(e: &sqlx::Error, setting: &str) -> Option<String> {
    let connecting = match e {
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("28") || c == "3D000"),
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => true,
        _ => false,
    };
    if connecting {
        cannot_heal(e, setting)
    } else {
        None
    }
}

fn database_cannot_heal(d: &dyn DatabaseError, setting: &str) -> Option<String> {
    let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
    let msg = d.message();
    if code.starts_with("08")
        || code.starts_with("53")
        || matches!(code.as_str(), "57P01" | "57P02" | "57P03")
    {
        return None;
    }
    Some(match code.as_str() {
        "28P01" => format!(
            "the database refused the password ({msg}): check the user and password in {setting}"
        ),
        "28000" if msg.contains("pg_hba.conf") => format!(
            "the server's pg_hba.conf refused this connection ({msg}); a server that accepts only TLS needs sslmode=require (or verify-full) in {setting}"
        ),
        "28000" => format!("the database refused the login ({msg}): check the user in {setting}"),
        "3D000" => format!("{msg}: create it, or fix the database name at the end of {setting}"),
        _ if code.is_empty() => format!("the database refused the connection: {msg}"),
        _ => format!("the database refused the connection: {msg} (SQLSTATE {code})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    fn ca_file() -> String {
        let path = std::env::temp_dir().join(format!("raxx-ca-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        path.display().to_string()
    }

    fn query(url: &str) -> Vec<(String, String)> {
        url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sslmode_is_read_as_libpq_reads_it() {
        let ca = ca_file();
        let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
            ("postgres://u@h/db".into(), vec![("sslmode", "prefer")]),
            (
                "postgres://u@h/db?sslmode=disable".into(),
                vec![("sslmode", "disable")],
            ),
            (
                "postgres://u@h/db?sslmode=ALLOW".into(),
                vec![("sslmode", "prefer")],
            ),
            (
                "postgres://u:p@h:5432/db?sslmode=require&application_name=x".into(),
                vec![("application_name", "x"), ("sslmode", "require")],
            ),
            (
                "postgres://u@h/db?ssl-mode=verify-full".into(),
                vec![("sslmode", "verify-full")],
            ),
            // require + a root certificate verifies the chain (libpq).
            (
                format!("postgres://u@h/db?sslmode=require&sslrootcert={ca}"),
                vec![("sslmode", "verify-ca"), ("sslrootcert", ca.as_str())],
            ),
            (
                format!("postgres://u@h/db?sslrootcert={ca}&sslmode=verify-full"),
                vec![("sslmode", "verify-full"), ("sslrootcert", ca.as_str())],
            ),
            (
                format!("postgres://u@h/db?sslrootcert={ca}"),
                vec![("sslmode", "prefer"), ("sslrootcert", ca.as_str())],
            ),
            (
                "postgres://u@h/db?sslrootcert=system".into(),
                vec![("sslmode", "verify-full")],
            ),
            (
                "postgresql://u@h/db?sslrootcert=system&sslmode=verify-full".into(),
                vec![("sslmode", "verify-full")],
            ),
        ];
        for (url, want) in cases {
            let got = postgres_url(&url, "DATABASE_URL", none).unwrap();
            assert_eq!(query(&got), pairs(&want), "{url} -> {got}");
        }
        let kept = postgres_url("postgres://u:p%40ss@h:6543/db", "DATABASE_URL", none).unwrap();
        assert!(kept.starts_with("postgres://u:p%40ss@h:6543/db?"), "{kept}");
    }

    #[test]
    fn the_environment_is_read_when_the_url_says_nothing() {
        let ca = ca_file();
        let ca2 = ca.clone();
        let env = move |k: &str| match k {
            "PGSSLMODE" => Some("require".to_string()),
            "PGSSLROOTCERT" => Some(ca2.clone()),
            _ => None,
        };
        let got = postgres_url("postgres://u@h/db", "DATABASE_URL", &env).unwrap();
        assert_eq!(
            query(&got),
            pairs(&[("sslmode", "verify-ca"), ("sslrootcert", &ca)])
        );
        // The URL wins over the environment.
        let got = postgres_url("postgres://u@h/db?sslmode=disable", "DATABASE_URL", &env).unwrap();
        assert_eq!(query(&got)[0], ("sslmode".into(), "disable".into()));
        let bad = |k: &str| (k == "PGSSLMODE").then(|| "strict".to_string());
        let e = postgres_url("postgres://u@h/db", "DATABASE_URL", bad)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("PGSSLMODE: unknown sslmode `strict`"), "{e}");
    }

    #[test]
    fn bad_tls_options_are_one_line_naming_the_setting() {
        let not_pem = std::env::temp_dir().join(format!("raxx-notpem-{}", uuid::Uuid::new_v4()));
        std::fs::write(&not_pem, "hello").unwrap();
        let cases: Vec<(String, &str)> = vec![
            (
                "postgres://u:secret@h/db?sslmode=verify".into(),
                "DATABASE_URL: unknown sslmode `verify`: use disable, allow, prefer, require, verify-ca or verify-full",
            ),
            (
                "postgres://u@h/db?sslmode=require&sslrootcert=/nonexistent/ca.pem".into(),
                "DATABASE_URL: sslrootcert `/nonexistent/ca.pem` cannot be read: No such file",
            ),
            (
                format!("postgres://u@h/db?sslrootcert={}", not_pem.display()),
                "holds no PEM certificate",
            ),
            (
                "postgres://u@h/db?sslrootcert=system&sslmode=require".into(),
                "DATABASE_URL: sslrootcert=system needs sslmode=verify-full (got sslmode=require)",
            ),
            ("postgres://u@:5432/db".into(), "DATABASE_URL"),
            (
                "postgres://u@h:99999/db".into(),
                "DATABASE_URL is not a valid URL",
            ),
        ];
        for (url, want) in cases {
            let e = postgres_url(&url, "DATABASE_URL", none)
                .expect_err(&url)
                .to_string();
            assert!(e.contains(want), "{url}: {e}");
            assert!(!e.contains('\n') && !e.contains("secret"), "{e}");
        }
        let e = postgres_url(
            "postgres://h/db?sslmode=x",
            "[customers] database_url",
            none,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("[customers] database_url: unknown sslmode"),
            "{e}"
        );
    }

    #[test]
    fn transient_errors_are_retried_and_the_rest_are_not() {
        use std::io::{Error, ErrorKind};
        let transient = [
            sqlx::Error::Io(Error::from(ErrorKind::ConnectionRefused)),
            sqlx::Error::Io(Error::from(ErrorKind::ConnectionReset)),
            sqlx::Error::Io(Error::from(ErrorKind::TimedOut)),
            sqlx::Error::PoolTimedOut,
        ];
        for e in &transient {
            assert_eq!(cannot_heal(e, "DATABASE_URL"), None, "{e}");
        }
        let fatal = [
            (
                sqlx::Error::Tls("server does not support TLS".into()),
                "the server does not offer TLS",
            ),
            (
                sqlx::Error::Io(Error::new(
                    ErrorKind::InvalidData,
                    "invalid peer certificate: UnknownIssuer",
                )),
                "the TLS handshake with the database failed: invalid peer certificate",
            ),
            (
                sqlx::Error::Configuration("bad port".into()),
                "DATABASE_URL is not usable",
            ),
            (
                sqlx::Error::Protocol("unexpected response from SSLRequest: 0x48".into()),
                "did not answer as PostgreSQL",
            ),
        ];
        for (e, want) in &fatal {
            let line = cannot_heal(e, "DATABASE_URL").unwrap_or_else(|| panic!("{e}"));
            assert!(line.contains(want), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }
}
