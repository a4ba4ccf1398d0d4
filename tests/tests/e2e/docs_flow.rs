//! `docs/flow.md` walks one message through the code, naming files and functions. This keeps
//! it true: every file it names exists, and every function named after a file (written as
//! `` `path` — `Type::method`, `function` ``) is defined in that file. Moving or renaming code
//! fails here until the walk is updated.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The inline code spans of one line, in order.
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect()
}

fn is_path(span: &str) -> bool {
    span.contains('/')
        && !span.contains(' ')
        && [".rs", ".sql", ".toml"].iter().any(|e| span.ends_with(e))
}

/// `(line number, path, functions named after it on that line)` for every file reference.
fn references(text: &str) -> Vec<(usize, String, Vec<String>)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut current: Option<(String, Vec<String>)> = None;
        for span in code_spans(line) {
            if is_path(span) {
                if let Some((p, f)) = current.take() {
                    out.push((n + 1, p, f));
                }
                current = Some((span.to_owned(), Vec::new()));
            } else if let Some((_, fns)) = current.as_mut() {
                // `Type::method`, `function` or `function()`: the last path segment is the name.
                let name = span.trim_end_matches("()");
                let name = name.rsplit("::").next().unwrap_or(name);
                if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    fns.push(name.to_owned());
                }
            }
        }
        if let Some((p, f)) = current {
            out.push((n + 1, p, f));
        }
    }
    out
}

fn defines(source: &str, name: &str) -> bool {
    let needle = format!("fn {name}");
    source.match_indices(&needle).any(|(i, _)| {
        source[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c == '(' || c == '<')
    })
}

#[test]
fn every_file_and_function_named_in_the_walk_exists() {
    let root = root();
    let text = std::fs::read_to_string(root.join("docs/flow.md")).expect("docs/flow.md");
    let refs = references(&text);
    assert!(
        refs.len() >= 20,
        "docs/flow.md names only {} files",
        refs.len()
    );
    let mut wrong = Vec::new();
    let mut functions = 0;
    for (line, path, fns) in refs {
        let Ok(source) = std::fs::read_to_string(root.join(&path)) else {
            wrong.push(format!("line {line}: {path} does not exist"));
            continue;
        };
        for f in fns {
            functions += 1;
            if !defines(&source, &f) {
                wrong.push(format!("line {line}: {path} defines no fn {f}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/flow.md is out of date:\n{}",
        wrong.join("\n")
    );
    assert!(
        functions >= 20,
        "docs/flow.md names only {functions} functions"
    );
}

#[test]
fn the_check_catches_a_missing_file_and_a_missing_function() {
    let refs = references(
        "1. `crates/x/src/a.rs` — `Queue::accept`, `prepare()`; then `crates/y/b.sql`.\n",
    );
    assert_eq!(
        refs,
        vec![
            (
                1,
                "crates/x/src/a.rs".to_owned(),
                vec!["accept".to_owned(), "prepare".to_owned()]
            ),
            (1, "crates/y/b.sql".to_owned(), vec![]),
        ]
    );
    assert!(defines("pub async fn accept(&self)", "accept"));
    assert!(defines("fn run<T>(x: T)", "run"));
    assert!(!defines("fn accepted(&self)", "accept"));
}
