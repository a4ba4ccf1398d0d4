use super::*;

#[test]
fn an_empty_file_gives_the_embedded_defaults() {
    let c = Config::from_toml("").expect("defaults are valid");
    assert_eq!(c.smtp.listeners.len(), 1);
    assert_eq!(c.smtp.listeners[0].addr.to_string(), "127.0.0.1:2525");
    assert_eq!(c.smtp.max_recipients, 1000);
    assert_eq!(c.smtp.max_message_size, ByteSize(25 * 1024 * 1024));
    assert!(c.database_url().starts_with("sqlite://"));
    assert!(c.database_url().ends_with("sealgate.db"));
    assert!(c.tls.is_none());
    let nets: Vec<String> = c.relay.networks.iter().map(|n| n.to_string()).collect();
    assert_eq!(nets, ["127.0.0.0/8", "::1/128"]);
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let err = Config::from_toml("[smtp]\nmax_recipient = 5\n").expect_err("typo must fail");
    let text = err.to_string();
    assert!(text.contains("max_recipient"), "{text}");
}

#[test]
fn wrong_types_and_bad_units_name_the_key() {
    let err = Config::from_toml("[smtp]\ncommand_timeout = \"5 minutes\"\n").expect_err("bad unit");
    let text = err.to_string();
    assert!(text.contains("command_timeout"), "{text}");
    let err = Config::from_toml("[relay]\nnetworks = [\"10.0.0.0/33\"]\n").expect_err("bad cidr");
    assert!(err.to_string().contains("networks"), "{err}");
}

#[test]
fn every_rule_violation_is_reported_at_once() {
    let text = "[smtp]\nmax_recipients = 0\nmax_connections = 0\n[[smtp.listener]]\naddr = \"127.0.0.1:465\"\ntls = \"implicit\"\n";
    let Err(ConfigError::Invalid(problems)) = Config::from_toml(text) else {
        panic!("expected validation errors");
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"smtp.listener[0].tls"), "{keys:?}");
    assert!(keys.contains(&"smtp.max_recipients"), "{keys:?}");
    assert!(keys.contains(&"smtp.max_connections"), "{keys:?}");
}

#[test]
fn units_parse_as_documented() {
    assert_eq!(
        HumanDuration::parse("250ms").map(|d| d.0.as_millis()),
        Ok(250)
    );
    assert_eq!(
        HumanDuration::parse("20h").map(|d| d.0.as_secs()),
        Ok(72_000)
    );
    assert!(HumanDuration::parse("5").is_err());
    assert_eq!(ByteSize::parse("25MiB"), Ok(ByteSize(26_214_400)));
    assert_eq!(ByteSize::parse("10MB"), Ok(ByteSize(10_000_000)));
    assert!(ByteSize::parse("10XB").is_err());
    let c = Config::from_toml("[smtp]\nmax_message_size = \"1MiB\"\n").expect("valid");
    assert_eq!(c.smtp.max_message_size.0, 1 << 20);
}

#[test]
fn the_environment_overrides_the_database_url() {
    let mut c = Config::from_toml("[database]\nurl = \"sqlite://x.db\"\n").expect("valid");
    c.apply_env([(
        "SEALGATE_DATABASE_URL".to_owned(),
        "postgres://u@h/db".to_owned(),
    )]);
    assert_eq!(c.database_url(), "postgres://u@h/db");
}

#[test]
fn the_example_config_is_valid_and_complete() {
    let text = include_str!("../../../config/sealgate.example.toml");
    // The example references certificate files that exist only in a deployment.
    let cfg: Config = toml::from_str(text).expect("example parses with every documented key");
    assert!(cfg.tls.is_some(), "the example documents [tls]");
    assert_eq!(cfg.smtp.listeners.len(), 3);
}

#[test]
fn delivery_defaults_follow_rfc_5321_timeouts_and_lease_must_cover_them() {
    let c = Config::from_toml("").expect("defaults");
    assert_eq!(c.delivery.smtp_port, 25);
    assert_eq!(c.delivery.data_timeout.0.as_secs(), 600);
    assert_eq!(c.queue.max_age.0.as_secs(), 5 * 86400);
    assert!(c.dns.nameservers.is_empty());
    let Err(ConfigError::Invalid(problems)) = Config::from_toml(
        "[queue]\nlease = \"1m\"\nretry_first = \"0s\"\n[delivery]\nsmtp_port = 0\n",
    ) else {
        panic!("expected validation errors");
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["delivery.smtp_port", "queue.retry_max", "queue.lease"],
        "{problems:?}"
    );
}

#[test]
fn the_postmaster_address_is_optional_and_must_be_a_plain_address() {
    assert_eq!(Config::from_toml("").expect("defaults").postmaster(), None);
    assert_eq!(
        Config::from_toml("[smtp]\npostmaster = \"\"\n")
            .expect("empty = unset")
            .postmaster(),
        None
    );
    let c = Config::from_toml("[smtp]\npostmaster = \"Ops@Clinic.Example\"\n").expect("valid");
    assert_eq!(
        c.postmaster().map(|a| a.to_string()).as_deref(),
        Some("Ops@clinic.example")
    );
    for bad in [
        "ops",
        "Ops <ops@clinic.example>",
        "<ops@clinic.example>",
        "a b@clinic.example",
        "ops@localhost",
    ] {
        let text = format!("[smtp]\npostmaster = {bad:?}\n");
        let Err(ConfigError::Invalid(problems)) = Config::from_toml(&text) else {
            panic!("{bad:?} accepted");
        };
        assert_eq!(problems[0].key, "smtp.postmaster", "{bad:?}");
    }
    let looped = "[server]\nhostname = \"relay.clinic.example\"\n\
                  [smtp]\npostmaster = \"PostMaster@relay.clinic.example\"\n";
    let Err(ConfigError::Invalid(problems)) = Config::from_toml(looped) else {
        panic!("a postmaster routed to itself was accepted");
    };
    assert_eq!(problems[0].key, "smtp.postmaster");
}

#[test]
fn routes_load_and_each_mistake_names_its_key() {
    let ok = "[[delivery.route]]\nname = \"partner\"\ndomains = [\"partner.example\", \".partner.example\"]\n\
              hosts = [\"gw.partner.example\", \"[192.0.2.7]\"]\ntls = \"pinned\"\n\
              pins = [\"AB:CD:0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab\"]\n\
              [[delivery.route]]\nname = \"perimeter\"\ndomains = [\"*\"]\nhosts = [\"[10.0.0.25]\"]\n\
              port = 2525\ntls = \"webpki\"\ntls_name = \"smtp.perimeter.example\"\n";
    let c = Config::from_toml(ok).expect("valid routes");
    assert_eq!(c.delivery.routes.len(), 2);
    assert_eq!(c.delivery.routes[1].port, Some(2525));
    assert_eq!(c.delivery.routes[0].tls, RouteTls::Pinned);

    let bad = "[[delivery.route]]\nname = \"a b\"\ndomains = [\"x..example\"]\nhosts = [\"[192.0.2.7]\"]\n\
               tls = \"dane\"\npins = [\"abc\"]\n\
               [[delivery.route]]\nname = \"c\"\ndomains = [\"*\"]\nhosts = [\"[192.0.2.8]\"]\ntls = \"webpki\"\n\
               [[delivery.route]]\nname = \"c\"\ndomains = [\"*\"]\nhosts = []\ntls = \"pinned\"\n";
    let Err(ConfigError::Invalid(problems)) = Config::from_toml(bad) else {
        panic!("expected validation errors");
    };
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let has = |key: &str, words: &str| {
        assert!(
            text.iter().any(|t| t.starts_with(key) && t.contains(words)),
            "{key}: {words}: {text:#?}"
        );
    };
    has("delivery.route[0].name", "without spaces");
    has("delivery.route[0].domains", "subdomain patterns");
    has("delivery.route[0].tls", "DANE needs host names");
    has("delivery.route[0].pins", "only used with tls = \"pinned\"");
    has("delivery.route[0].pins", "64 digits");
    has(
        "delivery.route[1].tls_name",
        "needs the name its certificate carries",
    );
    has("delivery.route[2].name", "another route has this name");
    has(
        "delivery.route[2].domains",
        "* is routed by delivery.route[1] already",
    );
    has("delivery.route[2].hosts", "at least one host");
    has("delivery.route[2].pins", "needs at least one pin");

    let err = Config::from_toml(
        "[[delivery.route]]\nname = \"x\"\ndomains = [\"*\"]\nhosts = [\"h.example\"]\n",
    )
    .expect_err("tls has no default");
    assert!(err.to_string().contains("tls"), "{err}");
}
