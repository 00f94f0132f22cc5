//! Line numbers for problems found after parsing (`flags.new-checkout.default`): the parsers
//! report lines for syntax errors only, so we find the path in the text ourselves. Each
//! locator returns the line of the deepest part of the path it finds, or `None`.

use toml::de::{DeTable, DeValue};

use super::file::FileFormat;
use super::validate::PathSeg;

pub(crate) fn locate(text: &str, format: FileFormat, path: &[PathSeg]) -> Option<usize> {
    let offset = match format {
        FileFormat::Toml => toml_offset(text, path),
        FileFormat::Json => json_offset(text, path),
        FileFormat::Yaml => return yaml_line(text, path),
    }?;
    Some(line_of_offset(text, offset))
}

/// 1-based line of a byte offset.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn toml_offset(text: &str, path: &[PathSeg]) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut array: Option<&toml::de::DeArray<'_>> = None;
    let mut found = None;
    for seg in path {
        let value = match (seg, table, array) {
            (PathSeg::Key(k), Some(t), _) => {
                let Some((key, value)) = t.get_key_value(k.as_str()) else {
                    break;
                };
                found = Some(key.span().start);
                value
            }
            (PathSeg::Index(i), _, Some(items)) => {
                let Some(item) = items.get(*i) else { break };
                found = Some(item.span().start);
                item
            }
            _ => break,
        };
        (table, array) = match value.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(a)),
            _ => (None, None),
        };
    }
    found
}

fn json_offset(text: &str, path: &[PathSeg]) -> Option<usize> {
    let mut scan = JsonScan {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let mut found = None;
    for seg in path {
        scan.skip_ws();
        match (seg, scan.peek()?) {
            (PathSeg::Key(want), b'{') => {
                scan.pos += 1;
                loop {
                    scan.skip_ws();
                    let key_at = scan.pos;
                    let key = scan.string()?;
                    scan.skip_ws();
                    scan.expect(b':')?;
                    if serde_json::from_str::<String>(key).ok().as_deref() == Some(want.as_str()) {
                        found = Some(key_at);
                        break;
                    }
                    scan.skip_value()?;
                    scan.skip_ws();
                    scan.expect(b',')?;
                }
            }
            (PathSeg::Index(want), b'[') => {
                scan.pos += 1;
                for _ in 0..*want {
                    scan.skip_value()?;
                    scan.skip_ws();
                    scan.expect(b',')?;
                }
                scan.skip_ws();
                found = Some(scan.pos);
            }
            _ => break,
        }
    }
    found
}

/// Just enough of a JSON scanner to skip values and find keys; the text already parsed.
struct JsonScan<'t> {
    bytes: &'t [u8],
    pos: usize,
}

impl<'t> JsonScan<'t> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// The quoted string at the cursor, quotes included.
    fn string(&mut self) -> Option<&'t str> {
        let start = self.pos;
        self.expect(b'"')?;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => break,
                _ => self.pos += 1,
            }
        }
        self.pos += 1;
        std::str::from_utf8(self.bytes.get(start..self.pos)?).ok()
    }

    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.pos += 1;
                }
                Some(())
            }
        }
    }
}

/// Block-style YAML by indentation: a key is a line `key:` one level below its parent, a
/// list item a line `- ` at the list's indentation. Flow style (`{…}`) is not followed.
fn yaml_line(text: &str, path: &[PathSeg]) -> Option<usize> {
    // (indent, content) per line; blank lines and comments are skipped by `significant`.
    let mut lines: Vec<(usize, &str)> = text
        .lines()
        .map(|l| {
            let content = l.trim_start_matches(' ');
            (l.len() - content.len(), content.trim_end())
        })
        .collect();
    let significant = |(_, c): &(usize, &str)| !c.is_empty() && !c.starts_with('#') && *c != "---";
    let (mut from, mut to) = (0, lines.len());
    let mut found = None;
    for seg in path {
        let first = (from..to).find(|&i| significant(&lines[i]))?;
        let indent = lines[first].0;
        let at_level = |i: &usize| significant(&lines[*i]) && lines[*i].0 == indent;
        let hit = match seg {
            PathSeg::Key(k) => (from..to)
                .filter(at_level)
                .find(|&i| yaml_key_is(lines[i].1, k)),
            PathSeg::Index(n) => (from..to)
                .filter(at_level)
                .filter(|&i| lines[i].1.starts_with('-'))
                .nth(*n),
        };
        let Some(i) = hit else { break };
        found = Some(i + 1);
        let (line_indent, content) = lines[i];
        // A key's block may hold a compact list (`- item`) at the key's own indentation.
        let ends_block = |j: &usize| {
            let (ind, c) = lines[*j];
            significant(&lines[*j])
                && (ind < indent || ind == indent && (seg_is_index(seg) || !c.starts_with('-')))
        };
        let block_end = (i + 1..to).find(ends_block).unwrap_or(to);
        if seg_is_index(seg) {
            // `- key: v`: the item's first key sits on the dash line, one level deeper.
            let rest = content[1..].trim_start_matches(' ');
            lines[i] = (line_indent + content.len() - rest.len(), rest);
            (from, to) = (i, block_end);
        } else {
            (from, to) = (i + 1, block_end);
        }
    }
    found
}

fn seg_is_index(seg: &PathSeg) -> bool {
    matches!(seg, PathSeg::Index(_))
}

fn yaml_key_is(content: &str, key: &str) -> bool {
    let unquoted = content.strip_prefix(key).and_then(|r| r.strip_prefix(':'));
    let quoted = || {
        ['"', '\''].iter().any(|q| {
            content
                .strip_prefix(*q)
                .and_then(|r| r.strip_prefix(key))
                .and_then(|r| r.strip_prefix(*q))
                .is_some_and(|r| r.starts_with(':'))
        })
    };
    unquoted.is_some_and(|r| r.is_empty() || r.starts_with(' ')) || quoted()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(parts: &[&str]) -> Vec<PathSeg> {
        parts
            .iter()
            .map(|p| match p.parse::<usize>() {
                Ok(i) => PathSeg::Index(i),
                Err(_) => PathSeg::Key((*p).to_owned()),
            })
            .collect()
    }

    const TOML: &str = r#"app = "a"

[flags.x]
type = "boolean"
variants = { on = true, off = false }
default = "of"

[[flags.x.rules]]
serve = "on"

[[flags.x.rules]]
rollout = { on = 10, off = 80 }
"#;

    const JSON: &str = r#"{
  "app": "a",
  "flags": {
    "w": {"type": "string", "default": "{\"x\"", "variants": {"a": "[", "b": ["]"]}},
    "x": {
      "type": "boolean",
      "variants": {"on": true, "off": false},
      "default": "of",
      "rules": [
        {"serve": "on"},
        {"rollout": {"on": 10, "off": 80}}
      ]
    }
  }
}"#;

    const YAML: &str = "app: a\nflags:\n  w:\n    default: q\n  x:\n    type: boolean\n    # note\n    variants:\n      on: true\n    default: of\n    rules:\n    - serve: on\n    - when:\n        - attr: a\n      rollout: {on: 10}\n";

    #[test]
    fn finds_the_line_of_a_path_in_each_format() {
        let cases: [(FileFormat, &str, &[&str], Option<usize>); 12] = [
            (FileFormat::Toml, TOML, &["flags", "x", "default"], Some(6)),
            (
                FileFormat::Toml,
                TOML,
                &["flags", "x", "rules", "1", "rollout"],
                Some(12),
            ),
            (
                FileFormat::Toml,
                TOML,
                &["flags", "x", "rules", "7"],
                Some(8),
            ),
            (FileFormat::Toml, TOML, &["flags", "nope"], Some(3)),
            (FileFormat::Json, JSON, &["flags", "x", "default"], Some(8)),
            (
                FileFormat::Json,
                JSON,
                &["flags", "x", "rules", "1", "rollout"],
                Some(11),
            ),
            (
                FileFormat::Json,
                JSON,
                &["flags", "x", "variants", "off"],
                Some(7),
            ),
            (
                FileFormat::Json,
                JSON,
                &["flags", "w", "variants", "b"],
                Some(4),
            ),
            (FileFormat::Yaml, YAML, &["flags", "x", "default"], Some(10)),
            (
                FileFormat::Yaml,
                YAML,
                &["flags", "x", "rules", "1", "rollout"],
                Some(15),
            ),
            (
                FileFormat::Yaml,
                YAML,
                &["flags", "x", "rules", "0", "serve"],
                Some(12),
            ),
            (FileFormat::Yaml, YAML, &["flags", "w", "default"], Some(4)),
        ];
        for (format, text, parts, expected) in cases {
            assert_eq!(
                locate(text, format, &path(parts)),
                expected,
                "{format:?} {parts:?}"
            );
        }
    }

    #[test]
    fn line_of_offset_counts_newlines_before() {
        assert_eq!(line_of_offset("a\nb\nc", 0), 1);
        assert_eq!(line_of_offset("a\nb\nc", 2), 2);
        assert_eq!(line_of_offset("a\nb\nc", 99), 3);
    }
}
