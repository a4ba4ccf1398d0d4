//! The config file a test daemon runs with.

use std::path::Path;

use crate::DaemonOpts;

/// The generated config: everything in the daemon's temp dir, listeners on
/// 127.0.0.1:0, loopback relay; then `opts.extra_toml` merged over it.
pub(crate) fn render_config(opts: &DaemonOpts<'_>, dir: &Path, db_url: &str) -> String {
    let data_dir = dir.join("data");
    let path = |p: &Path| toml::Value::from(p.display().to_string());
    let mut base = toml::Table::new();
    base.insert(
        "server".into(),
        table([
            ("hostname", opts.hostname.as_str().into()),
            ("shutdown_grace", "5s".into()),
        ]),
    );
    base.insert("database".into(), table([("url", db_url.into())]));
    base.insert(
        "storage".into(),
        table([
            ("data_dir", path(&data_dir)),
            ("seal_key_file", path(&data_dir.join("seal.key"))),
        ]),
    );
    let listeners: Vec<toml::Value> = opts
        .listeners
        .iter()
        .map(|mode| table([("addr", "127.0.0.1:0".into()), ("tls", (*mode).into())]))
        .collect();
    base.insert("smtp".into(), table([("listener", listeners.into())]));
    if let Some(issued) = opts.tls {
        let tls_dir = dir.join("tls");
        std::fs::create_dir_all(&tls_dir).expect("create tls dir");
        let (cert, key) = issued.write_to(&tls_dir, "server");
        base.insert(
            "tls".into(),
            table([("cert_file", path(&cert)), ("key_file", path(&key))]),
        );
    }
    let networks = vec![
        toml::Value::from("127.0.0.0/8"),
        toml::Value::from("::1/128"),
    ];
    base.insert("relay".into(), table([("networks", networks.into())]));
    // Tests never reach beyond loopback: delivery is off unless a test turns it on (with its own
    // test DNS server), and even then nothing asks the system resolver.
    base.insert("delivery".into(), table([("enabled", false.into())]));
    let nowhere = vec![toml::Value::from("127.0.0.1:9")];
    base.insert(
        "dns".into(),
        table([("nameservers", nowhere.into()), ("attempts", 1.into())]),
    );
    let extra: toml::Table = opts
        .extra_toml
        .parse()
        .unwrap_or_else(|e| panic!("extra_toml is not valid TOML: {e}\n{}", opts.extra_toml));
    merge(&mut base, extra);
    toml::to_string(&base).expect("serialize config")
}

fn table<const N: usize>(pairs: [(&str, toml::Value); N]) -> toml::Value {
    toml::Value::Table(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Merges `over` into `base`: tables recursively, any other value replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_toml_merges_into_generated_tables() {
        let opts = DaemonOpts {
            extra_toml: "[smtp]\nmax_recipients = 3\n[server]\nshutdown_grace = \"1s\"\n".into(),
            listeners: vec!["starttls", "implicit"],
            ..DaemonOpts::default()
        };
        let text = render_config(&opts, Path::new("/tmp/x"), "sqlite:///tmp/x/data/s.db");
        let t: toml::Table = text.parse().expect("valid toml");
        assert_eq!(t["smtp"]["max_recipients"].as_integer(), Some(3));
        assert_eq!(t["smtp"]["listener"].as_array().map(Vec::len), Some(2));
        assert_eq!(t["smtp"]["listener"][1]["tls"].as_str(), Some("implicit"));
        assert_eq!(t["server"]["shutdown_grace"].as_str(), Some("1s"));
        assert_eq!(t["server"]["hostname"].as_str(), Some("relay.example.test"));
        assert_eq!(
            t["database"]["url"].as_str(),
            Some("sqlite:///tmp/x/data/s.db")
        );
    }
}
