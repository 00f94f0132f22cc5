//! The two migration folders describe one schema: the same files, in the same order, so
//! a database of either backend is at the same version after the same release.

use std::path::Path;

fn listing(backend: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn both_backends_list_the_same_migration_files() {
    let sqlite = listing("sqlite");
    let postgres = listing("postgres");
    assert!(!sqlite.is_empty(), "no migrations found");
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|n| !b.contains(n)).cloned().collect()
    };
    assert_eq!(
        only(&sqlite, &postgres),
        Vec::<String>::new(),
        "only in sqlite/"
    );
    assert_eq!(
        only(&postgres, &sqlite),
        Vec::<String>::new(),
        "only in postgres/"
    );
}

#[test]
fn migrations_are_numbered_without_gaps() {
    for (i, name) in listing("sqlite").iter().enumerate() {
        assert!(name.ends_with(".sql"), "{name}: not a .sql file");
        let number: usize = name
            .split('_')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no NNNN_ prefix"));
        assert_eq!(number, i + 1, "{name}: expected number {}", i + 1);
    }
}
