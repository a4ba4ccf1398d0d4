//! The MTA-STS policy file and TXT record parsers (RFC 8461 §3.1, §3.2) and MX matching
//! (§4.1), through their public entry points.
//!
//! Checks: an accepted policy keeps its limits (max_age, mx required unless `none`), its MX
//! patterns are normalized, it survives being written out and parsed again and a round trip
//! through its cache row, and each pattern matches the host it names in any case; an
//! accepted TXT id is 1 to 32 letters and digits; MX matching ignores case.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_discovery::mta_sts::policy::normalize_domain;
use sealgate_discovery::mta_sts::{
    MAX_AGE_LIMIT, StsMode, StsPolicy, mx_pattern_matches, parse_sts_record,
};

/// When the policy was fetched (microseconds since the epoch), as the cache stores it.
const FETCHED: i64 = 1_700_000_000_000_000;

fuzz_target!(|data: &[u8]| {
    // The fetcher refuses a body that is not UTF-8 (fetch.rs), so the parser sees only text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = StsPolicy::parse(text, "fuzz1", FETCHED) {
        check_policy(&policy);
    }
    let records: Vec<String> = text.split('\n').map(str::to_owned).collect();
    if let Ok(id) = parse_sts_record(&records) {
        assert!((1..=32).contains(&id.len()), "id {id:?}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "id {id:?}");
    }
    if let Some((pattern, host)) = text.split_once('\n') {
        let upper = host.to_ascii_uppercase();
        assert_eq!(
            mx_pattern_matches(pattern, host),
            mx_pattern_matches(pattern, &upper)
        );
    }
});

fn check_policy(policy: &StsPolicy) {
    assert!(policy.max_age <= MAX_AGE_LIMIT);
    assert!(policy.mode == StsMode::None || !policy.mx.is_empty());
    let max_age = i64::try_from(policy.max_age).expect("max_age fits");
    assert_eq!(policy.expires_at, FETCHED + max_age * 1_000_000);
    for pattern in &policy.mx {
        let name = pattern.strip_prefix("*.").unwrap_or(pattern);
        assert_eq!(normalize_domain(name).as_deref(), Some(name), "{pattern:?}");
        let host = match pattern.strip_prefix("*.") {
            Some(suffix) => format!("mx1.{suffix}"),
            None => pattern.clone(),
        };
        assert!(
            policy.mx_matches(&host),
            "{pattern:?} does not match {host:?}"
        );
        assert!(policy.mx_matches(&host.to_ascii_uppercase()));
        assert!(policy.mx_matches(&format!("{host}.")));
    }
    let written = write(policy);
    let again = StsPolicy::parse(&written, &policy.id, FETCHED)
        .unwrap_or_else(|e| panic!("{written:?} does not parse: {e}"));
    assert_eq!(&again, policy);
    let row = policy.to_row("example.com", &written);
    assert_eq!(StsPolicy::from_row(&row).as_ref(), Some(policy));
}

/// The policy file for `policy` (RFC 8461 §3.2), lines ending in CRLF.
fn write(policy: &StsPolicy) -> String {
    let mut out = format!(
        "version: STSv1\r\nmode: {}\r\nmax_age: {}\r\n",
        policy.mode, policy.max_age
    );
    for mx in &policy.mx {
        out.push_str(&format!("mx: {mx}\r\n"));
    }
    out
}
