//! The crate layering rules of STYLE.md ("Layers"), checked against `cargo metadata`.
//!
//! Adding a crate to the workspace means adding it to [`LAYERS`] below; the
//! test fails until then.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A production crate at layer L0..L5.
    Prod(u8),
    /// Test-only crates.
    Dev,
}

const LAYERS: &[(&str, Class)] = &[
    ("sealgate-types", Class::Prod(0)),
    ("sealgate-config", Class::Prod(1)),
    ("sealgate-smtp-proto", Class::Prod(1)),
    ("sealgate-dns", Class::Prod(1)),
    ("sealgate-crypto", Class::Prod(1)),
    ("sealgate-encrypt", Class::Prod(1)),
    ("sealgate-store", Class::Prod(1)),
    ("sealgate-web", Class::Prod(1)),
    ("sealgate-audit", Class::Prod(2)),
    ("sealgate-discovery", Class::Prod(2)),
    ("sealgate-policy", Class::Prod(2)),
    ("sealgate-queue", Class::Prod(3)),
    ("sealgate-webhooks", Class::Prod(3)),
    ("sealgate-ingress", Class::Prod(4)),
    ("sealgate-delivery", Class::Prod(4)),
    ("sealgate-api", Class::Prod(4)),
    ("sealgate-portal", Class::Prod(4)),
    ("sealgate", Class::Prod(5)),
    ("sealgate-testkit", Class::Dev),
    ("sealgate-tests", Class::Dev),
];

/// External crates only some workspace crates may use (in any dependency table).
const RESTRICTED: &[(&str, &[&str])] = &[
    ("anyhow", &["sealgate"]),
    ("tracing-subscriber", &["sealgate"]),
    ("clap", &["sealgate"]),
    ("sqlx", &["sealgate-store", "sealgate-testkit"]),
];

/// The pure crate and what it may not reach through normal dependencies,
/// directly or through other workspace crates.
const PURE: &str = "sealgate-policy";
const IMPURE: &[&str] = &[
    "tokio",
    "tokio-util",
    "tokio-rustls",
    "tokio-stream",
    "async-trait",
    "futures",
    "futures-util",
    "mio",
    "socket2",
    "rustls",
    "sqlx",
    "hyper",
    "hyper-util",
    "reqwest",
    "ureq",
    "axum",
    "tower",
    "hickory-resolver",
    "hickory-proto",
    "hickory-client",
    "hickory-server",
    "lettre",
    "sealgate-store",
    "sealgate-dns",
    "sealgate-discovery",
];

#[derive(Debug)]
struct Package {
    name: String,
    manifest: String,
    /// (dependency name, kind: "normal" | "dev" | "build")
    deps: Vec<(String, String)>,
}

fn packages(meta: &Value) -> Vec<Package> {
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .map(|p| Package {
            name: p["name"].as_str().unwrap_or_default().to_owned(),
            manifest: p["manifest_path"].as_str().unwrap_or_default().to_owned(),
            deps: p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    let name = d["name"].as_str().unwrap_or_default().to_owned();
                    let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                    (name, kind)
                })
                .collect(),
        })
        .collect()
}

fn class(name: &str) -> Option<Class> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

fn is_runtime(kind: &str) -> bool {
    kind == "normal" || kind == "build"
}

/// Every rule broken by the workspace described by `pkgs`.
fn violations(pkgs: &[Package]) -> Vec<String> {
    let mut out = Vec::new();
    let names: BTreeSet<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
    for p in pkgs {
        let Some(from) = class(&p.name) else {
            out.push(format!(
                "{} is not in the layer table (tests/tests/e2e/layering.rs LAYERS); add it",
                p.name
            ));
            continue;
        };
        for (dep, kind) in &p.deps {
            if names.contains(dep.as_str()) {
                check_internal(&p.name, from, dep, kind, &mut out);
            }
            check_restricted(&p.name, dep, kind, &mut out);
        }
    }
    check_pure(pkgs, &mut out);
    out
}

fn check_internal(from_name: &str, from: Class, dep: &str, kind: &str, out: &mut Vec<String>) {
    if dep == "sealgate-tests" {
        out.push(format!(
            "{from_name} depends on sealgate-tests ({kind}); nothing may"
        ));
        return;
    }
    let Some(to) = class(dep) else { return }; // reported as missing from the table
    if !is_runtime(kind) {
        return;
    }
    match (from, to) {
        (Class::Prod(_), Class::Dev) => out.push(format!(
            "{from_name} has {dep} as a {kind} dependency; test crates only go in [dev-dependencies]"
        )),
        (Class::Prod(l), Class::Prod(m)) if m >= l => out.push(format!(
            "{from_name} (L{l}) depends on {dep} (L{m}); a crate may depend only on lower layers"
        )),
        _ => {}
    }
}

fn check_restricted(from: &str, dep: &str, kind: &str, out: &mut Vec<String>) {
    for (krate, allowed) in RESTRICTED {
        if dep == *krate && !allowed.contains(&from) {
            out.push(format!(
                "{from} depends on {dep} ({kind}); only {allowed:?} may"
            ));
        }
    }
}

/// Walks the pure crate's normal dependencies through the workspace.
fn check_pure(pkgs: &[Package], out: &mut Vec<String>) {
    let by_name: BTreeMap<&str, &Package> = pkgs.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut stack = vec![vec![PURE.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().map(String::as_str).unwrap_or_default();
        let Some(p) = by_name.get(last) else { continue };
        if !seen.insert(last.to_owned()) {
            continue;
        }
        for (dep, kind) in p.deps.iter().filter(|(_, k)| is_runtime(k)) {
            let mut next = path.clone();
            next.push(dep.clone());
            if IMPURE.contains(&dep.as_str()) {
                out.push(format!(
                    "{PURE} must stay pure (no I/O, no async) but reaches {dep} ({kind}): {}",
                    next.join(" → ")
                ));
            } else if by_name.contains_key(dep.as_str()) {
                stack.push(next);
            }
        }
    }
}

/// `[lints] workspace = true` in every member's manifest (cargo metadata does not show it).
fn lint_violations(pkgs: &[Package]) -> Vec<String> {
    pkgs.iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p.manifest)
                .unwrap_or_else(|e| panic!("read {}: {e}", p.manifest));
            let manifest: toml::Table = text
                .parse()
                .unwrap_or_else(|e| panic!("parse {}: {e}", p.manifest));
            let inherits = manifest
                .get("lints")
                .and_then(|l| l.get("workspace"))
                .and_then(toml::Value::as_bool)
                == Some(true);
            (!inherits).then(|| format!("{} lacks `[lints] workspace = true`", p.manifest))
        })
        .collect()
}

/// Each member's `src/lib.rs`, if any, opens with a `//!` doc saying what it owns.
fn doc_violations(pkgs: &[Package]) -> Vec<String> {
    pkgs.iter()
        .filter_map(|p| {
            let lib = Path::new(&p.manifest).with_file_name("src/lib.rs");
            let text = std::fs::read_to_string(&lib).ok()?;
            (!text.trim_start().starts_with("//!"))
                .then(|| format!("{} does not open with a `//!` crate doc", lib.display()))
        })
        .collect()
}

fn workspace_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = sealgate_tests::workspace_root().join("Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata JSON")
}

#[test]
fn workspace_crates_follow_the_layer_rules() {
    let pkgs = packages(&workspace_metadata());
    assert!(
        pkgs.iter().any(|p| p.name == "sealgate"),
        "metadata lists no sealgate crate: {pkgs:?}"
    );
    let mut all = violations(&pkgs);
    all.extend(lint_violations(&pkgs));
    all.extend(doc_violations(&pkgs));
    assert!(
        all.is_empty(),
        "layering rules broken:\n  {}",
        all.join("\n  ")
    );
}

fn pkg(name: &str, deps: &[(&str, &str)]) -> Package {
    Package {
        name: name.to_owned(),
        manifest: String::new(),
        deps: deps
            .iter()
            .map(|(d, k)| ((*d).to_owned(), (*k).to_owned()))
            .collect(),
    }
}

#[test]
fn layering_check_catches_each_kind_of_violation() {
    let pkgs = [
        pkg("sealgate-types", &[]),
        pkg(
            "sealgate-config",
            &[("sealgate-types", "normal"), ("tokio", "normal")],
        ),
        pkg(
            "sealgate-store",
            &[("sqlx", "normal"), ("sealgate-testkit", "dev")],
        ),
        pkg(
            "sealgate-ingress",
            &[("sealgate-delivery", "normal"), ("anyhow", "normal")],
        ),
        pkg("sealgate-delivery", &[("sealgate-testkit", "normal")]),
        pkg("sealgate-policy", &[("sealgate-config", "normal")]),
        pkg("sealgate-queue", &[("sqlx", "dev")]),
        pkg(
            "sealgate-testkit",
            &[("sealgate-store", "normal"), ("sqlx", "normal")],
        ),
        pkg("sealgate-newthing", &[]),
    ];
    let found = violations(&pkgs).join("\n");
    for expected in [
        "sealgate-ingress (L4) depends on sealgate-delivery (L4)",
        "sealgate-ingress depends on anyhow",
        "sealgate-delivery has sealgate-testkit as a normal dependency",
        "reaches tokio (normal): sealgate-policy → sealgate-config → tokio",
        "sealgate-queue depends on sqlx (dev)",
        "sealgate-newthing is not in the layer table",
    ] {
        assert!(
            found.contains(expected),
            "missing {expected:?} in:\n{found}"
        );
    }
    assert_eq!(
        found.lines().count(),
        6,
        "unexpected extra findings:\n{found}"
    );
}
