//! [`decide`]: rules + evidence + message facts → [`Decision`]. Pure and deterministic.

use crate::content::{self, ContentOutcome};
use crate::decision::{Decision, Source};
use crate::evidence::{
    Credential, DaneStatus, DomainEvidence, MessageFacts, MtaStsMode, RecipientEvidence,
};
use crate::method::{Level, Method};
use crate::rules::{Order, Override, Rules, candidate_order};

/// Decides how to deliver to `address` (an envelope address, `local@domain`).
///
/// Precedence for the level and a forced method: address override > domain override >
/// content trigger > org default. The chain never holds `tls-opportunistic` when protection
/// is required, and always ends with the portal — except for a phi-free message (see
/// [`MessageFacts::phi_free`]), decided by TLS availability alone.
///
/// The same as [`prepare`] then [`Prepared::decide`]; delivery uses those two steps, to look
/// up only the keys [`Prepared::keys_that_matter`] names.
pub fn decide(
    rules: &Rules,
    address: &str,
    domain_evidence: &DomainEvidence,
    recipient_evidence: &RecipientEvidence,
    message: &MessageFacts,
) -> Decision {
    prepare(rules, address, domain_evidence, message).decide(recipient_evidence)
}

/// The first half of [`decide`], which does not depend on the recipient's keys: the level,
/// the forced method, the order of methods to consider, the content triggers.
pub fn prepare<'a>(
    rules: &'a Rules,
    address: &'a str,
    domain_evidence: &'a DomainEvidence,
    message: &'a MessageFacts,
) -> Prepared<'a> {
    let front = (!message.phi_free).then(|| front(rules, address, domain_evidence, message));
    Prepared {
        rules,
        address,
        domain_evidence,
        message,
        front,
    }
}

/// A recipient's decision up to its keys (see [`prepare`]).
pub struct Prepared<'a> {
    rules: &'a Rules,
    address: &'a str,
    domain_evidence: &'a DomainEvidence,
    message: &'a MessageFacts,
    /// `None` for a phi-free message, decided by TLS availability alone.
    front: Option<Front>,
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Prepared<'_> {
    /// Which of the recipient's keys could change the choice: the end-to-end methods that
    /// would lead the chain if every key were usable (before the first method that needs no
    /// key). A key for a method behind that one cannot make it the chosen method, so delivery
    /// looks up only these. A phi-free message needs none.
    pub fn keys_that_matter(&self) -> KeysThatMatter {
        let mut wanted = KeysThatMatter::default();
        let Some(front) = &self.front else {
            return wanted;
        };
        let assumed = Credential::Usable {
            fingerprint: "(assumed)".to_owned(),
        };
        let every_key = RecipientEvidence {
            pgp: assumed.clone(),
            smime: assumed,
        };
        let probe = front.availability(self.rules, self.domain_evidence, &every_key);
        for m in front.chain(&probe, &mut Vec::new()) {
            match m {
                Method::Pgp => wanted.pgp = true,
                Method::Smime => wanted.smime = true,
                _ => break,
            }
        }
        wanted
    }

    /// The decision, given what is known of the recipient's keys.
    pub fn decide(self, recipient_evidence: &RecipientEvidence) -> Decision {
        let Some(mut front) = self.front else {
            return decide_phi_free(
                self.rules,
                self.address,
                self.domain_evidence,
                recipient_evidence,
                self.message,
            );
        };
        let probe = front.availability(self.rules, self.domain_evidence, recipient_evidence);
        let mut evidence = std::mem::take(&mut front.evidence);
        evidence.extend(probe.describe(front.pins.len()));
        let alerts = probe.alerts(&domain_of(self.address));
        if front.why != Order::Preference {
            evidence.push(format!(
                "order: {} ({})",
                render_chain(&front.order),
                front.why.describe()
            ));
        }
        let chain = front.chain(&probe, &mut evidence);
        evidence.push(format!("chain: {}", render_chain(&chain)));
        Decision {
            level: front.level,
            level_source: front.level_source,
            forced: front.forced,
            chain,
            pins: front.pins,
            evidence,
            alerts,
            strip_headers: front.content.strip_headers,
            subject_tag_to_remove: front.content.subject_tag,
        }
    }
}

/// The key lookups worth doing for one recipient (see [`Prepared::keys_that_matter`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeysThatMatter {
    /// Look for an OpenPGP key.
    pub pgp: bool,
    /// Look for an S/MIME certificate.
    pub smime: bool,
}

/// What [`decide`] settles before it looks at the recipient's keys.
struct Front {
    level: Level,
    requiretls: bool,
    level_source: Source,
    forced: Option<(Method, Source)>,
    pins: Vec<String>,
    /// The methods to consider, in order (see [`candidate_order`]).
    order: Vec<Method>,
    why: Order,
    evidence: Vec<String>,
    content: ContentOutcome,
}

impl Front {
    fn availability<'a>(
        &self,
        rules: &'a Rules,
        domain: &'a DomainEvidence,
        recipient: &'a RecipientEvidence,
    ) -> Availability<'a> {
        Availability {
            level: self.level,
            rules,
            requiretls: self.requiretls,
            domain,
            recipient,
            pinned: !self.pins.is_empty(),
        }
    }

    /// The chain the order gives with `probe`'s availability. Opportunistic TLS is placed
    /// automatically only in the org's preference order.
    fn chain(&self, probe: &Availability<'_>, evidence: &mut Vec<String>) -> Vec<Method> {
        let automatic = self.why == Order::Preference;
        build_chain(
            probe,
            self.forced.map(|(m, _)| m),
            &self.order,
            automatic,
            evidence,
        )
    }
}

fn front(
    rules: &Rules,
    address: &str,
    domain_evidence: &DomainEvidence,
    message: &MessageFacts,
) -> Front {
    let domain = domain_of(address);
    let by_address = rules.address_override(address);
    let by_domain = rules.domain_override(&domain);
    let content = content::scan(&rules.content, message);
    let mut evidence = vec![format!("recipient: {address} (domain {domain})")];
    evidence.extend(content.notes.iter().cloned());

    let (level, level_source) = match resolve_level(rules, by_address, by_domain, &content) {
        // RFC 8689 §4.2: a REQUIRETLS message must not travel without verified protection,
        // whatever our own rules would allow.
        (Level::None, _) if message.requiretls => (Level::Required, Source::Requiretls),
        resolved => resolved,
    };
    evidence.push(format!("level: {level} ({level_source})"));
    if message.requiretls {
        evidence.push(
            "requiretls: the sender asked for REQUIRETLS (RFC 8689); only verified TLS to a peer \
             offering it may carry the message"
                .to_owned(),
        );
    }
    if content.tls_required_no {
        evidence.push(tls_required_note(level).to_owned());
    }
    let forced = resolve_forced(by_address, by_domain, &content);
    if let Some((m, source)) = forced {
        evidence.push(format!("forced: {m} ({source})"));
    }
    let pins = collect_pins(by_address, by_domain, domain_evidence);

    // Only an operator's rule marks a recipient "end-to-end only" (see `candidate_order`).
    let by_rule = matches!(
        forced,
        Some((_, Source::AddressOverride | Source::DomainOverride))
    );
    // An address rule's own chain beats a domain rule's, which beats the content triggers'
    // (when one of them required protection, and no rule forced a method); any of them
    // replaces the preference.
    let own_chain = by_address
        .and_then(|o| o.chain.as_deref())
        .or_else(|| by_domain.and_then(|o| o.chain.as_deref()))
        .or(if by_rule {
            None
        } else {
            content.chain.as_deref()
        });
    let (order, why) = candidate_order(
        forced.map(|(m, _)| m),
        by_rule,
        own_chain,
        &rules.preference,
    );
    Front {
        level,
        requiretls: message.requiretls,
        level_source,
        forced,
        pins,
        order,
        why,
        evidence,
        content,
    }
}

/// The evidence line of a phi-free decision.
const PHI_FREE: &str = "phi-free: a Sealgate notice without protected content";

/// A message Sealgate wrote without protected content: level none (unless the sender asked
/// for REQUIRETLS, RFC 8689 §4.2), no rule applies but the pins, and the chain is
/// `tls-verified` when available, then `tls-opportunistic` when allowed. When neither is,
/// `tls-verified` alone: it cannot connect, so the message waits rather than going anywhere
/// else.
fn decide_phi_free(
    rules: &Rules,
    address: &str,
    domain_evidence: &DomainEvidence,
    recipient_evidence: &RecipientEvidence,
    message: &MessageFacts,
) -> Decision {
    let domain = domain_of(address);
    let (level, level_source) = if message.requiretls {
        (Level::Required, Source::Requiretls)
    } else {
        (Level::None, Source::PhiFree)
    };
    let mut evidence = vec![
        format!("recipient: {address} (domain {domain})"),
        PHI_FREE.to_owned(),
        format!("level: {level} ({level_source})"),
    ];
    if message.requiretls {
        evidence.push("requiretls: only verified TLS to a peer offering it".to_owned());
    }
    let by_address = rules.address_override(address);
    let pins = collect_pins(by_address, rules.domain_override(&domain), domain_evidence);
    let probe = Availability {
        level,
        rules,
        requiretls: message.requiretls,
        domain: domain_evidence,
        recipient: recipient_evidence,
        pinned: !pins.is_empty(),
    };
    evidence.extend(probe.describe(pins.len()));
    let mut chain = Vec::new();
    for m in [Method::TlsVerified, Method::TlsOpportunistic] {
        match probe.check(m) {
            Ok(()) => chain.push(m),
            Err(why) => evidence.push(format!("skip {m}: {why}")),
        }
    }
    if chain.is_empty() {
        evidence.push("phi-free: no method can be used now; the message waits".to_owned());
        chain.push(Method::TlsVerified);
    }
    evidence.push(format!("chain: {}", render_chain(&chain)));
    Decision {
        level,
        level_source,
        forced: None,
        chain,
        pins,
        evidence,
        alerts: probe.alerts(&domain),
        strip_headers: Vec::new(),
        subject_tag_to_remove: None,
    }
}

/// The domain part of `address`, lowercased and without a trailing dot.
fn domain_of(address: &str) -> String {
    let domain = address.rsplit_once('@').map_or(address, |(_, d)| d);
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn resolve_level(
    rules: &Rules,
    by_address: Option<&Override>,
    by_domain: Option<&Override>,
    content: &ContentOutcome,
) -> (Level, Source) {
    by_address
        .and_then(|o| o.level)
        .map(|l| (l, Source::AddressOverride))
        .or_else(|| {
            by_domain
                .and_then(|o| o.level)
                .map(|l| (l, Source::DomainOverride))
        })
        .or_else(|| content.level.map(|l| (l, Source::ContentTrigger)))
        .unwrap_or((rules.default_level, Source::Default))
}

fn resolve_forced(
    by_address: Option<&Override>,
    by_domain: Option<&Override>,
    content: &ContentOutcome,
) -> Option<(Method, Source)> {
    by_address
        .and_then(|o| o.method)
        .map(|m| (m, Source::AddressOverride))
        .or_else(|| {
            by_domain
                .and_then(|o| o.method)
                .map(|m| (m, Source::DomainOverride))
        })
        .or_else(|| content.method.map(|m| (m, Source::ContentTrigger)))
}

fn tls_required_note(level: Level) -> &'static str {
    match level {
        // RFC 8689 §5: the header asks to relax TLS; it cannot lower our own policy.
        Level::Required => "content: TLS-Required: No ignored: protection is required",
        Level::None => "content: TLS-Required: No present; protection already not required",
    }
}

fn collect_pins(
    by_address: Option<&Override>,
    by_domain: Option<&Override>,
    domain: &DomainEvidence,
) -> Vec<String> {
    let mut pins: Vec<String> = by_address
        .into_iter()
        .chain(by_domain)
        .flat_map(|o| o.pins.iter())
        .chain(domain.pins.iter())
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    pins.sort();
    pins.dedup();
    pins
}

/// Which methods the evidence allows, and why not.
struct Availability<'a> {
    level: Level,
    rules: &'a Rules,
    requiretls: bool,
    domain: &'a DomainEvidence,
    recipient: &'a RecipientEvidence,
    pinned: bool,
}

impl Availability<'_> {
    /// `Ok` when `method` can be used, else why not.
    fn check(&self, method: Method) -> Result<(), String> {
        if self.level == Level::Required
            && method.protects()
            && !self.rules.satisfies_required(method)
        {
            return Err(
                "does not satisfy protection level required here ([policy] protecting)".to_owned(),
            );
        }
        match method {
            Method::TlsVerified => self.tls_verified(),
            Method::TlsAuthenticated => self.tls_authenticated(),
            Method::TlsOpportunistic => {
                if self.level == Level::Required {
                    Err("protection is required".to_owned())
                } else if self.domain.dane == DaneStatus::Bogus {
                    Err(BOGUS.to_owned())
                } else {
                    Ok(())
                }
            }
            Method::Pgp if self.recipient.pgp.is_usable() => Ok(()),
            Method::Pgp => Err(format!(
                "no usable OpenPGP key: {}",
                self.recipient.pgp.describe()
            )),
            Method::Smime if self.recipient.smime.is_usable() => Ok(()),
            Method::Smime => Err(format!(
                "no usable S/MIME certificate: {}",
                self.recipient.smime.describe()
            )),
            Method::Portal => Ok(()),
        }
    }

    fn tls_verified(&self) -> Result<(), String> {
        let d = self.domain;
        if let Some(r) = &d.route {
            return match &r.unverified {
                None => Ok(()),
                Some(why) => Err(format!("route {}: {why}", r.name)),
            };
        }
        if d.dane == DaneStatus::Bogus {
            return Err(BOGUS.to_owned());
        }
        if d.downgraded() {
            return Err(format!(
                "possible downgrade: verified TLS seen before, now dane {} and mta-sts {}",
                d.dane.as_str(),
                d.mta_sts.as_str()
            ));
        }
        if d.shows_verified_tls() || self.pinned {
            return Ok(());
        }
        Err(format!(
            "no DANE (dane {}), no MTA-STS enforce (mta-sts {}), no pin",
            d.dane.as_str(),
            d.mta_sts.as_str()
        ))
    }

    /// Authenticated TLS (a WebPKI-valid certificate for the MX host name) is tried at
    /// connect time; here it is ruled out where it would be a downgrade or cannot serve.
    fn tls_authenticated(&self) -> Result<(), String> {
        let d = self.domain;
        if let Some(r) = &d.route {
            return Err(format!(
                "the domain's mail goes by route {}, whose own TLS requirement applies ({})",
                r.name, r.tls
            ));
        }
        if d.dane == DaneStatus::Bogus {
            return Err(BOGUS.to_owned());
        }
        if self.requiretls {
            // RFC 8689 §4.2.1: the MX must have been found securely (DNSSEC or MTA-STS).
            return Err(
                "REQUIRETLS asks for an MX found securely (DNSSEC or MTA-STS, RFC 8689 §4.2.1)"
                    .to_owned(),
            );
        }
        if self.rules.authenticated_after_verified {
            return Ok(());
        }
        if d.downgraded() {
            return Err(format!(
                "possible downgrade: verified TLS seen before, now dane {} and mta-sts {}; \
                 not downgraded to authenticated TLS ([policy] authenticated_after_verified = false)",
                d.dane.as_str(),
                d.mta_sts.as_str()
            ));
        }
        if d.shows_verified_tls() || self.pinned {
            return Err(
                "the domain offers verified TLS; authenticated TLS is not its fallback \
                 ([policy] authenticated_after_verified = false)"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// One evidence line per probe, in a fixed order.
    fn describe(&self, pins: usize) -> Vec<String> {
        let d = self.domain;
        if let Some(r) = &d.route {
            let verified = match &r.unverified {
                None => "yes".to_owned(),
                Some(why) => format!("no ({why})"),
            };
            return vec![
                format!(
                    "route: {} ({}); the domain's MX hosts are not used",
                    r.name, r.tls
                ),
                format!("route gives verified tls: {verified}"),
                format!("pgp key: {}", self.recipient.pgp.describe()),
                format!("smime certificate: {}", self.recipient.smime.describe()),
            ];
        }
        let dane = match d.dane {
            DaneStatus::Valid => "dane: valid (DNSSEC-secure usable TLSA)",
            DaneStatus::Unusable => {
                "dane: unusable (DNSSEC-secure TLSA, none usable: STARTTLS mandatory without \
                 authentication, RFC 7672 §2.2; not verified TLS)"
            }
            DaneStatus::SecureNoTlsa => "dane: secure-no-tlsa (signed zone, no TLSA)",
            DaneStatus::Insecure => "dane: insecure (unsigned zone, TLSA ignored)",
            DaneStatus::Bogus => "dane: bogus (DNSSEC validation failed)",
            DaneStatus::Unknown => "dane: unknown (not probed or lookup failed)",
        };
        let sts = match d.mta_sts {
            MtaStsMode::Enforce => "mta-sts: enforce",
            MtaStsMode::Testing => "mta-sts: testing (reported, not enforced)",
            MtaStsMode::None => "mta-sts: none",
            MtaStsMode::Unknown => "mta-sts: unknown (not probed or fetch failed)",
        };
        vec![
            dane.to_owned(),
            sts.to_owned(),
            format!("pins: {pins}"),
            format!(
                "starttls: {}",
                if d.starttls_seen { "seen" } else { "not seen" }
            ),
            format!(
                "verified tls seen before: {}",
                yes_no(d.seen_verified_before)
            ),
            format!("pgp key: {}", self.recipient.pgp.describe()),
            format!("smime certificate: {}", self.recipient.smime.describe()),
        ]
    }

    fn alerts(&self, domain: &str) -> Vec<String> {
        let d = self.domain;
        let mut alerts = Vec::new();
        if d.downgraded() {
            alerts.push(format!(
                "downgrade: {domain} was seen with verified TLS and now shows none \
                 (dane {}, mta-sts {}); tls-verified withheld",
                d.dane.as_str(),
                d.mta_sts.as_str()
            ));
        }
        if d.dane == DaneStatus::Bogus {
            alerts.push(format!(
                "dnssec bogus: TLSA lookup for {domain} failed validation; its MX is not used"
            ));
        }
        alerts
    }
}

// RFC 7672 §2.2: a bogus TLSA answer means the MX MUST NOT be used.
const BOGUS: &str = "DNSSEC bogus TLSA answer: the MX must not be used (RFC 7672 §2.2)";

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Keeps the available methods of `order` (the forced one first, see
/// [`candidate_order`]), then — only in the org's preference order (`automatic`) and when
/// protection is not required — opportunistic TLS after `tls-verified`; the portal closes
/// the chain and nothing follows it.
fn build_chain(
    probe: &Availability<'_>,
    forced: Option<Method>,
    order: &[Method],
    automatic: bool,
    evidence: &mut Vec<String>,
) -> Vec<Method> {
    let mut chain = Vec::new();
    let mut considered = Vec::new();
    // Verified TLS that will be in the chain goes before authenticated TLS: a forced
    // tls-authenticated (which would lead the chain) is skipped where verified TLS works; an
    // unforced one is moved after it (`verified_before_authenticated`).
    let verified_ahead =
        order.contains(&Method::TlsVerified) && probe.check(Method::TlsVerified).is_ok();
    for (i, m) in order.iter().copied().enumerate() {
        if considered.contains(&m) {
            continue;
        }
        considered.push(m);
        let check = match probe.check(m) {
            Ok(()) if m == Method::TlsAuthenticated && forced == Some(m) && verified_ahead => {
                Err("the domain offers verified TLS, which comes first".to_owned())
            }
            other => other,
        };
        match check {
            Ok(()) => chain.push(m),
            Err(why) if i == 0 && forced.is_some() => {
                evidence.push(format!(
                    "skip {m}: forced but unavailable: {why}; falling back"
                ));
            }
            Err(why) => evidence.push(format!("skip {m}: {why}")),
        }
        if m == Method::Portal {
            break;
        }
    }
    if chain.last() != Some(&Method::Portal) {
        evidence.push("portal: appended, the portal always works".to_owned());
        chain.push(Method::Portal);
    }
    if automatic {
        insert_opportunistic(probe, forced, &mut chain);
    }
    verified_before_authenticated(&mut chain);
    chain
}

/// Authenticated TLS is never tried ahead of verified TLS: when an order put it first (one
/// `Rules::validate` would refuse, or rules built in code), `tls-authenticated` moves to just
/// after `tls-verified`.
fn verified_before_authenticated(chain: &mut Vec<Method>) {
    let at = |chain: &[Method], m| chain.iter().position(|x| *x == m);
    if let (Some(a), Some(v)) = (
        at(chain, Method::TlsAuthenticated),
        at(chain, Method::TlsVerified),
    ) && a < v
    {
        chain.remove(a);
        chain.insert(v, Method::TlsAuthenticated);
    }
}

fn insert_opportunistic(probe: &Availability<'_>, forced: Option<Method>, chain: &mut Vec<Method>) {
    if chain.contains(&Method::TlsOpportunistic) || probe.check(Method::TlsOpportunistic).is_err() {
        return;
    }
    let at = match chain.iter().position(|m| *m == Method::TlsVerified) {
        Some(i) => i + 1,
        None if forced.is_some() && chain.first().copied() == forced => 1,
        None => 0,
    };
    let portal_at = chain.len() - 1;
    if at <= portal_at {
        chain.insert(at, Method::TlsOpportunistic);
    }
}

fn render_chain(chain: &[Method]) -> String {
    chain
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(" > ")
}
