//! Tests of the MTA-STS text parsers and MX matching.

use proptest::prelude::*;

use crate::error::{PolicyError, StsRecordError};
use crate::mta_sts::policy::*;

const FETCHED: i64 = 1_700_000_000_000_000;

fn parse(text: &str) -> Result<StsPolicy, PolicyError> {
    StsPolicy::parse(text, "abc123", FETCHED)
}

fn txt(records: &[&str]) -> Result<String, StsRecordError> {
    let records: Vec<String> = records.iter().map(|r| (*r).to_owned()).collect();
    parse_sts_record(&records)
}

#[test]
fn rfc_example_policy_parses_with_crlf_lines() {
    let text = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n\
                mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";
    let policy = parse(text).unwrap();
    assert_eq!(
        policy,
        StsPolicy {
            id: "abc123".into(),
            mode: StsMode::Enforce,
            mx: vec![
                "mail.example.com".into(),
                "*.example.net".into(),
                "backupmx.example.com".into()
            ],
            max_age: 604_800,
            fetched_at: FETCHED,
            expires_at: FETCHED + 604_800_000_000,
        }
    );
}

#[test]
fn lf_lines_any_order_whitespace_and_unknown_keys_are_accepted() {
    let text = "mx:\tMX1.Example.TEST.\nmax_age:   86400  \nfuture_key: some value\n\
                version: STSv1\nmode: testing";
    let policy = parse(text).unwrap();
    assert_eq!(policy.mode, StsMode::Testing);
    assert_eq!(policy.mx, ["mx1.example.test"]);
    assert_eq!(policy.max_age, 86_400);
}

/// A policy of `mx: a.test` with the given `version`, `mode` and `max_age` lines.
fn policy_with(lines: &str) -> Result<StsPolicy, PolicyError> {
    parse(&format!("{lines}mx: a.test\n"))
}

#[test]
fn keys_and_the_version_and_mode_values_are_read_in_any_case() {
    let cases: &[(&str, StsMode)] = &[
        (
            "version: STSv1\nmode: Enforce\nmax_age: 60\n",
            StsMode::Enforce,
        ),
        (
            "version: STSv1\nmode: ENFORCE\nmax_age: 60\n",
            StsMode::Enforce,
        ),
        (
            "version: stsv1\nmode: enforce\nmax_age: 60\n",
            StsMode::Enforce,
        ),
        (
            "Version: STSV1\nMode: eNfOrCe\nMax_Age: 60\n",
            StsMode::Enforce,
        ),
        (
            "VERSION: STSv1\nMODE: Testing\nMAX_AGE: 60\n",
            StsMode::Testing,
        ),
        ("version: STSv1\nmode: None\nmax_age: 60\n", StsMode::None),
    ];
    for (lines, want) in cases {
        let policy = policy_with(lines).unwrap_or_else(|e| panic!("{lines:?}: {e}"));
        assert_eq!(policy.mode, *want, "{lines:?}");
        assert_eq!(policy.max_age, 60, "{lines:?}");
    }
    let policy = parse("version: STSv1\nmode: enforce\nMX: A.test\nMx: *.B.test\nmax_age: 1\n");
    assert_eq!(policy.unwrap().mx, ["a.test", "*.b.test"]);
}

#[test]
fn a_single_field_repeated_with_another_value_makes_the_policy_invalid() {
    let conflict = |field, first: &str, first_line, second: &str, line| PolicyError::Conflict {
        field,
        first: first.into(),
        first_line,
        second: second.into(),
        line,
    };
    let cases: &[(&str, PolicyError)] = &[
        (
            "version: STSv1\nmode: testing\nmode: enforce\nmax_age: 60\n",
            conflict("mode", "testing", 2, "enforce", 3),
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age: 60\nmode: none\n",
            conflict("mode", "enforce", 2, "none", 4),
        ),
        (
            "version: STSv1\nmode: enforce\nMODE: bogus\nmax_age: 60\n",
            conflict("mode", "enforce", 2, "bogus", 3),
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age: 60\nmax_age: 999999999999\n",
            conflict("max_age", "60", 3, "999999999999", 4),
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age: 86400\nmax_age: 1\n",
            conflict("max_age", "86400", 3, "1", 4),
        ),
        (
            "version: STSv1\nversion: STSv2\nmode: enforce\nmax_age: 60\n",
            conflict("version", "STSv1", 1, "STSv2", 2),
        ),
    ];
    for (lines, want) in cases {
        assert_eq!(&policy_with(lines).unwrap_err(), want, "{lines:?}");
    }
    let err = policy_with("version: STSv1\nmode: testing\nmode: enforce\nmax_age: 60\n");
    assert_eq!(
        err.unwrap_err().to_string(),
        "field \"mode\" appears twice with different values: \"testing\" on line 2, \
         \"enforce\" on line 3"
    );
}

#[test]
fn a_single_field_repeated_with_the_same_meaning_is_accepted() {
    let cases: &[(&str, StsMode, u64)] = &[
        (
            "version: STSv1\nmode: enforce\nmode: enforce\nmax_age: 60\n",
            StsMode::Enforce,
            60,
        ),
        (
            "version: STSv1\nmode: enforce\nmode: Enforce\nmax_age: 60\n",
            StsMode::Enforce,
            60,
        ),
        (
            "version: STSv1\nVERSION: stsv1\nmode: testing\nmax_age: 60\n",
            StsMode::Testing,
            60,
        ),
        (
            "version: STSv1\nmode: none\nmax_age: 86400\nmax_age: 0086400\n",
            StsMode::None,
            86_400,
        ),
    ];
    for (lines, mode, max_age) in cases {
        let policy = policy_with(lines).unwrap_or_else(|e| panic!("{lines:?}: {e}"));
        assert_eq!(
            (policy.mode, policy.max_age),
            (*mode, *max_age),
            "{lines:?}"
        );
    }
    // Repeated unknown fields mean nothing and conflict with nothing.
    let policy = policy_with("version: STSv1\nmode: enforce\nx: 1\nx: 2\nmax_age: 60\n");
    assert_eq!(policy.unwrap().mode, StsMode::Enforce);
}

#[test]
fn mode_none_needs_no_mx_but_other_modes_do() {
    let none = parse("version: STSv1\nmode: none\nmax_age: 0\n").unwrap();
    assert_eq!(none.mode, StsMode::None);
    assert!(none.mx.is_empty());
    assert_eq!(none.expires_at, FETCHED);
    assert!(none.is_expired(FETCHED));
    for mode in ["enforce", "testing"] {
        let err = parse(&format!("version: STSv1\nmode: {mode}\nmax_age: 10\n")).unwrap_err();
        assert_eq!(err, PolicyError::Missing { field: "mx" });
    }
}

#[test]
fn max_age_limits() {
    let at = |v: &str| parse(&format!("version: STSv1\nmode: none\nmax_age: {v}\n"));
    assert_eq!(at("31557600").unwrap().max_age, MAX_AGE_LIMIT);
    assert_eq!(at("0000000005").unwrap().max_age, 5);
    assert_eq!(
        at("31557601").unwrap_err(),
        PolicyError::MaxAgeTooLarge {
            max_age: 31_557_601
        }
    );
    for bad in ["-1", "+5", "1e3", "12345678901", "", "5 days", "0x10"] {
        assert!(
            matches!(at(bad), Err(PolicyError::MaxAge { .. })),
            "{bad:?}: {:?}",
            at(bad)
        );
    }
}

#[test]
fn errors_name_the_problem() {
    let cases: &[(&str, PolicyError)] = &[
        (
            "mode: enforce\nmx: a.test\nmax_age: 1\n",
            PolicyError::Missing { field: "version" },
        ),
        (
            "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n",
            PolicyError::Version {
                found: "STSv2".into(),
            },
        ),
        (
            "version: STSv1.0\nmode: enforce\nmx: a.test\nmax_age: 1\n",
            PolicyError::Version {
                found: "STSv1.0".into(),
            },
        ),
        (
            "version: STSv1\nmx: a.test\nmax_age: 1\n",
            PolicyError::Missing { field: "mode" },
        ),
        (
            "version: STSv1\nmode: Enforced\nmx: a.test\nmax_age: 1\n",
            PolicyError::Mode {
                found: "Enforced".into(),
            },
        ),
        (
            "version: STSv1\nmode: enforce\nmx: a.test\n",
            PolicyError::Missing { field: "max_age" },
        ),
        (
            "version: STSv1\nmode: enforce\nmx: a.test\nmax_age 1\n",
            PolicyError::Malformed { line: 4 },
        ),
        (
            "version: STSv1\n mode: enforce\nmx: a.test\nmax_age: 1\n",
            PolicyError::Malformed { line: 2 },
        ),
        (
            "version: STSv1\nmode: enforce\nmx: a..test\nmax_age: 1\n",
            PolicyError::Mx {
                line: 3,
                found: "a..test".into(),
            },
        ),
        (
            "<html><body>hello</body></html>",
            PolicyError::Malformed { line: 1 },
        ),
        (
            "version: STSv1\nmode: enforce\u{7}\nmx: a.test\nmax_age: 1\n",
            PolicyError::Malformed { line: 2 },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&parse(text).unwrap_err(), want, "{text:?}");
    }
    let err = parse("version: STSv1\nmode: enforce\nmx: *.*.test\nmax_age: 1\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "mx \"*.*.test\" on line 3 is not a host name pattern"
    );
}

#[test]
fn invalid_mx_patterns_are_refused() {
    for mx in [
        "*",
        "*.",
        "*.*.a.test",
        "a.*.test",
        "-a.test",
        "a-.test",
        "a_b.test",
        "a test",
        "mx.example.test:25",
        "[127.0.0.1]",
        "*example.test",
        ".a.test",
    ] {
        let text = format!("version: STSv1\nmode: enforce\nmx: {mx}\nmax_age: 1\n");
        assert!(
            matches!(parse(&text), Err(PolicyError::Mx { .. })),
            "{mx:?} was accepted"
        );
    }
    let long_label = format!("{}.test", "a".repeat(64));
    let text = format!("version: STSv1\nmode: enforce\nmx: {long_label}\nmax_age: 1\n");
    assert!(matches!(parse(&text), Err(PolicyError::Mx { .. })));
}

#[test]
fn a_byte_order_mark_and_blank_lines_are_tolerated() {
    let text = "\u{feff}version: STSv1\r\n\r\nmode: enforce\n   \nmx: a.test\nmax_age: 5\r\n\r\n";
    assert_eq!(parse(text).unwrap().mx, ["a.test"]);
}

#[test]
fn policy_round_trips_through_a_store_row() {
    let text = "version: STSv1\nmode: testing\nmx: a.test\nmx: *.b.test\nmax_age: 99\n";
    let policy = parse(text).unwrap();
    let row = policy.to_row("example.test", text);
    assert_eq!(row.mode, "testing");
    assert_eq!(row.max_age, 99);
    assert_eq!(row.body, text);
    assert_eq!(StsPolicy::from_row(&row), Some(policy));
    let mut bad = row;
    bad.mode = "strict".into();
    assert_eq!(StsPolicy::from_row(&bad), None);
}

#[test]
fn mx_matching_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("mx.example.com", "mx.example.com", true),
        ("mx.example.com", "MX.Example.COM", true),
        ("mx.example.com", "mx.example.com.", true),
        ("mx.example.com", "mx2.example.com", false),
        ("mx.example.com", "example.com", false),
        ("mx.example.com", "x.mx.example.com", false),
        ("*.example.com", "mx1.example.com", true),
        ("*.example.com", "MX1.EXAMPLE.COM.", true),
        ("*.example.com", "example.com", false),
        ("*.example.com", "a.b.example.com", false),
        ("*.example.com", ".example.com", false),
        ("*.example.com", "mx1.example.co", false),
        ("*.example.com", "mx1.notexample.com", false),
        ("*.example.com", "mx1example.com", false),
        ("*.example.com", "", false),
        ("*.example.com", "*.example.com", false),
        ("*.com", "example.com", true),
        ("mx.example.com", "", false),
    ];
    for (pattern, host, want) in cases {
        assert_eq!(
            mx_pattern_matches(pattern, host),
            *want,
            "pattern {pattern:?} host {host:?}"
        );
    }
    let policy =
        parse("version: STSv1\nmode: enforce\nmx: a.test\nmx: *.b.test\nmax_age: 1\n").unwrap();
    assert!(policy.mx_matches("A.TEST."));
    assert!(policy.mx_matches("mx.b.test"));
    assert!(!policy.mx_matches("b.test"));
    assert!(!policy.mx_matches("c.test"));
}

#[test]
fn sts_record_rfc_example_and_variants() {
    assert_eq!(
        txt(&["v=STSv1; id=20160831085700Z;"]).unwrap(),
        "20160831085700Z"
    );
    assert_eq!(txt(&["v=STSv1;id=1"]).unwrap(), "1");
    assert_eq!(txt(&["v=STSv1 ;\tid=abc ; ext=v;"]).unwrap(), "abc");
    assert_eq!(txt(&["v=STSv1; ext=1; id=X9"]).unwrap(), "X9");
    assert_eq!(txt(&["v=STSv1; id=first; id=second"]).unwrap(), "first");
    let id32 = "a".repeat(32);
    assert_eq!(txt(&[&format!("v=STSv1; id={id32}")]).unwrap(), id32);
    // Other TXT records at the name are discarded (RFC 8461 §3.1).
    assert_eq!(
        txt(&["google-site-verification=x", "v=STSv1; id=7", "v=spf1 -all"]).unwrap(),
        "7"
    );
}

#[test]
fn sts_record_problems_mean_no_policy() {
    assert_eq!(txt(&[]).unwrap_err(), StsRecordError::Missing);
    assert_eq!(txt(&["v=spf1 -all"]).unwrap_err(), StsRecordError::Missing);
    assert_eq!(
        txt(&["v=STSv10; id=1"]).unwrap_err(),
        StsRecordError::Missing
    );
    assert_eq!(
        txt(&[" v=STSv1; id=1"]).unwrap_err(),
        StsRecordError::Missing
    );
    assert_eq!(
        txt(&["V=STSV1; id=1"]).unwrap_err(),
        StsRecordError::Missing
    );
    assert_eq!(
        txt(&["v=STSv1; id=1", "v=STSv1; id=2"]).unwrap_err(),
        StsRecordError::Several { count: 2 }
    );
    assert_eq!(
        txt(&["v=STSv1; id=1", "v=STSv1; id=1"]).unwrap_err(),
        StsRecordError::Several { count: 2 }
    );
    for bad in [
        "v=STSv1",
        "v=STSv1;",
        "v=STSv1; ext=1",
        "v=STSv1; id=",
        "v=STSv1; id=a-b",
        "v=STSv1; id=a b",
        "v=STSv1; id=ünïcode",
        "v=STSv1 id=1",
        "v=STSv1; id=1;; ext=2",
        "v=STSv1;; id=1",
        "v=STSv1; id",
        "v=STSv1; =1",
        "v=STSv1; id=1=2",
        "v=STSv1; _x=1; id=1",
    ] {
        assert!(
            matches!(txt(&[bad]), Err(StsRecordError::Invalid { .. })),
            "{bad:?}: {:?}",
            txt(&[bad])
        );
    }
    let id33 = "a".repeat(33);
    assert!(matches!(
        txt(&[&format!("v=STSv1; id={id33}")]),
        Err(StsRecordError::Invalid { .. })
    ));
}

#[test]
fn domains_are_normalised_or_refused() {
    assert_eq!(
        normalize_domain("Example.TEST.").as_deref(),
        Some("example.test")
    );
    assert_eq!(
        normalize_domain("xn--bcher-kva.test").as_deref(),
        Some("xn--bcher-kva.test")
    );
    for bad in [
        "",
        ".",
        "a..b",
        "a/b",
        "a b",
        "evil.test/x?",
        "-a.test",
        "a@b.test",
    ] {
        assert_eq!(normalize_domain(bad), None, "{bad:?}");
    }
    assert_eq!(
        normalize_domain(&"a.".repeat(128)),
        None,
        "longer than 253 octets"
    );
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?"
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..4).prop_map(|labels| labels.join("."))
}

proptest! {
    #[test]
    fn wildcard_matches_exactly_one_leftmost_label(
        left in label(), deeper in label(), suffix in name(), upper in any::<bool>(), dot in any::<bool>()
    ) {
        let pattern = format!("*.{suffix}");
        let mut host = format!("{left}.{suffix}");
        if upper { host = host.to_ascii_uppercase(); }
        if dot { host.push('.'); }
        prop_assert!(mx_pattern_matches(&pattern, &host));
        prop_assert!(!mx_pattern_matches(&pattern, &suffix));
        let two_deep = format!("{deeper}.{left}.{suffix}");
        prop_assert!(!mx_pattern_matches(&pattern, &two_deep));
    }

    #[test]
    fn exact_pattern_matches_only_itself_ignoring_case(host in name(), other in name()) {
        prop_assert!(mx_pattern_matches(&host, &host.to_ascii_uppercase()));
        prop_assert_eq!(mx_pattern_matches(&host, &other), host == other);
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in "\\PC{0,200}", lines in prop::collection::vec("[a-z_]{1,8}:[ -~]{0,20}", 0..8)) {
        let _ = parse(&text);
        let _ = parse(&lines.join("\n"));
        let _ = txt(&[&text]);
    }

    #[test]
    fn a_valid_policy_always_parses_back(
        mode in prop::sample::select(vec!["enforce", "testing", "none"]),
        mx in prop::collection::vec(name(), 1..5),
        max_age in 0..=MAX_AGE_LIMIT,
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = format!("version: STSv1{eol}mode: {mode}{eol}max_age: {max_age}{eol}");
        for m in &mx {
            text.push_str(&format!("mx: {m}{eol}"));
        }
        let policy = parse(&text).unwrap();
        prop_assert_eq!(policy.mode.as_str(), mode);
        prop_assert_eq!(&policy.mx, &mx);
        prop_assert_eq!(policy.max_age, max_age);
        for m in &mx {
            prop_assert!(policy.mx_matches(m));
        }
    }
}
