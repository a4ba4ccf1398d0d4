//! Building the delivery side from configuration: the resolver, the policy rules, discovery
//! (DANE, MTA-STS), the certificate verifiers, the end-to-end encryption settings and the
//! secure portal's (with its master key ring).

use std::sync::Arc;

use anyhow::Context as _;
use sealgate_config::{Config, SmimeCipher};
use sealgate_crypto::KeyRing;
use sealgate_delivery::DeliveryContext;
use sealgate_delivery::PortalSettings;
use sealgate_delivery::SmimeOut;
use sealgate_delivery::Verifiers;
use sealgate_delivery::{ClientConfig, TlsPolicy};
use sealgate_discovery::keys::KeySettings;
use sealgate_discovery::mta_sts::{FetchConfig, HttpsFetcher, MtaSts};
use sealgate_discovery::{Discovery, ProbeSettings};
use sealgate_dns::{DnsConfig, HickoryResolver, Resolver};
use sealgate_encrypt::pgp::{PgpCert, PgpSettings, PgpSigner};
use sealgate_encrypt::smime::{ContentCipher, SmimeSettings, SmimeSigner, TrustStore};
use sealgate_policy::Rules;
use sealgate_queue::{Queue, Recorder, RetryPolicy};
use sealgate_store::Store;
use tracing::warn;

/// The resolver for routing and DANE.
pub(crate) fn resolver(cfg: &Config) -> anyhow::Result<Arc<dyn Resolver>> {
    let resolver =
        HickoryResolver::new(&dns_config(cfg)).context("setting up the DNS resolver ([dns])")?;
    Ok(Arc::new(resolver))
}

/// The resolver settings of `[dns]`.
pub(crate) fn dns_config(cfg: &Config) -> DnsConfig {
    DnsConfig {
        nameservers: cfg.dns.nameservers.clone(),
        timeout: cfg.dns.timeout.0,
        attempts: cfg.dns.attempts,
        dnssec: cfg.dns.dnssec,
        trust_anchor_file: cfg.dns.trust_anchor_file.clone(),
    }
}

/// The `[policy]` rules, or every problem with them (each naming its key).
pub(crate) fn rules(cfg: &Config) -> Result<Rules, Vec<String>> {
    let Some(table) = &cfg.policy else {
        return Ok(Rules::default());
    };
    let rules: Rules = table
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| vec![format!("policy: {}", e.message().trim())])?;
    let problems: Vec<String> = rules
        .validate()
        .into_iter()
        .map(|e| format!("policy: {e}"))
        .collect();
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

/// The `[[delivery.route]]` table (checked when the configuration was loaded).
pub(crate) fn routes(cfg: &Config) -> sealgate_delivery::Routes {
    use sealgate_config::RouteTls;
    use sealgate_delivery::{HopTls, NextHop};
    let d = &cfg.delivery;
    sealgate_delivery::Routes::new(
        d.routes
            .iter()
            .map(|r| {
                let tls = match r.tls {
                    RouteTls::Dane => HopTls::Dane,
                    RouteTls::Webpki => HopTls::WebPki {
                        name: r.tls_name.clone(),
                    },
                    RouteTls::Pinned => HopTls::Pinned(r.pins.clone()),
                    RouteTls::Opportunistic => HopTls::Opportunistic,
                };
                let hop = NextHop {
                    name: r.name.clone(),
                    hosts: r.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                    port: r.port.unwrap_or(d.smtp_port),
                    tls,
                };
                (r.domains.clone(), hop)
            })
            .collect(),
    )
}

/// The certificate verifiers for verified TLS, and the extra roots they trust.
pub(crate) fn verifiers(
    cfg: &Config,
) -> anyhow::Result<(Verifiers, Vec<rustls::pki_types::CertificateDer<'static>>)> {
    let extra = match &cfg.delivery.ca_file {
        Some(path) => Verifiers::load_pem_file(path).context("reading delivery.ca_file")?,
        None => Vec::new(),
    };
    let v = Verifiers::new(cfg.delivery.public_roots, &extra)
        .context("building the certificate verifiers ([delivery] public_roots, ca_file)")?;
    Ok((v, extra))
}

/// What delivery and `sealgate check` share: resolver, rules, discovery (key discovery
/// included), verifiers and how encrypted messages are made.
pub(crate) struct Security {
    pub resolver: Arc<dyn Resolver>,
    pub rules: Arc<Rules>,
    pub discovery: Arc<Discovery>,
    pub verifiers: Arc<Verifiers>,
    pub encryption: Arc<sealgate_delivery::Encryption>,
}

/// Builds [`Security`] over `store`.
pub(crate) fn security(cfg: &Config, store: Store) -> anyhow::Result<Security> {
    let resolver = resolver(cfg)?;
    let rules = rules(cfg).map_err(|p| anyhow::anyhow!("invalid [policy]: {}", p.join("; ")))?;
    let (verifiers, extra_roots) = verifiers(cfg)?;
    let encryption = encryption(cfg)?;
    let wkd_fetch = FetchConfig {
        https_port: cfg.pgp.wkd_https_port,
        timeout: cfg.pgp.wkd_timeout.0,
        extra_roots: extra_roots.clone(),
        public_roots: cfg.delivery.public_roots,
    };
    let sts = if cfg.mta_sts.enabled {
        let fetcher = HttpsFetcher::new(
            FetchConfig {
                https_port: cfg.mta_sts.https_port,
                timeout: cfg.mta_sts.fetch_timeout.0,
                extra_roots,
                public_roots: cfg.delivery.public_roots,
            },
            resolver.clone(),
        )
        .context("setting up MTA-STS policy fetching ([mta_sts])")?;
        Some(Arc::new(MtaSts::new(
            resolver.clone(),
            Arc::new(fetcher),
            store.clone(),
            cfg.probes.negative_ttl.0,
            cfg.probes.max_entries,
        )))
    } else {
        None
    };
    let discovery = Discovery::new(
        resolver.clone(),
        sts,
        store,
        ProbeSettings {
            smtp_port: cfg.delivery.smtp_port,
            max_ttl: cfg.probes.max_ttl.0,
            negative_ttl: cfg.probes.negative_ttl.0,
            failure_ttl: cfg.probes.failure_ttl.0,
            max_entries: cfg.probes.max_entries,
        },
    );
    let keys = KeySettings {
        pgp: cfg.pgp.enabled,
        wkd: cfg.pgp.enabled && cfg.pgp.wkd,
        openpgpkey: cfg.openpgpkey_lookups(),
        smime: cfg.smime.enabled,
        smimea: cfg.smimea_lookups(),
        fetch: wkd_fetch,
    };
    let trust = encryption.smime.as_ref().map(|s| s.trust.clone());
    let discovery = discovery
        .with_keys(keys, trust)
        .context("setting up key discovery ([pgp] wkd)")?;
    Ok(Security {
        resolver,
        rules: Arc::new(rules),
        discovery: Arc::new(discovery),
        verifiers: Arc::new(verifiers),
        encryption: Arc::new(sealgate_delivery::Encryption {
            pgp: encryption.pgp,
            smime: encryption.smime.map(|s| SmimeOut {
                settings: s.settings,
                cipher: s.cipher,
                cbc_for: s.cbc_for,
            }),
        }),
    })
}

/// The `[[dkim.key]]` signing keys, read from their files.
pub(crate) fn dkim_keys(cfg: &Config) -> anyhow::Result<sealgate_crypto::dkim::DkimKeys> {
    Ok(sealgate_crypto::dkim::DkimKeys::new(file_dkim_keys(cfg)?))
}

/// The `[[dkim.key]]` files' keys.
fn file_dkim_keys(cfg: &Config) -> anyhow::Result<Vec<sealgate_crypto::dkim::DkimKey>> {
    let mut keys = Vec::with_capacity(cfg.dkim.keys.len());
    for (i, k) in cfg.dkim.keys.iter().enumerate() {
        let algorithm = k.algorithm.parse()?;
        let key =
            sealgate_crypto::dkim::DkimKey::load(&k.domain, &k.selector, algorithm, &k.key_file)
                .with_context(|| format!("dkim.key[{i}]"))?;
        keys.push(key);
    }
    Ok(keys)
}

/// Every DKIM key: the `[[dkim.key]]` files, then the keys stored in the database (opened with
/// the node key ring). A stored key that cannot be opened or used is named in the error.
pub(crate) async fn all_dkim_keys(
    cfg: &Config,
    store: &sealgate_store::Store,
    ring: &sealgate_crypto::KeyRing,
) -> anyhow::Result<sealgate_crypto::dkim::DkimKeys> {
    let mut keys = file_dkim_keys(cfg)?;
    for k in store
        .dkim_keys()
        .await
        .context("reading the stored DKIM keys")?
    {
        let source = format!("stored key {} (selector {})", k.domain, k.selector);
        let pem = ring
            .open(
                &k.key_sealed,
                &sealgate_crypto::dkim::sealing_context(&k.domain, &k.selector),
            )
            .with_context(|| format!("opening the {source}"))?;
        let key = sealgate_crypto::dkim::DkimKey::from_pem(
            &k.domain,
            &k.selector,
            k.algorithm.parse()?,
            &pem,
            &source,
        )?;
        keys.push(key);
    }
    Ok(sealgate_crypto::dkim::DkimKeys::new(keys))
}

/// The ARC sealer of `[arc]`, if configured.
pub(crate) fn arc_sealer(
    cfg: &Config,
) -> anyhow::Result<Option<Arc<sealgate_crypto::arc::ArcSealer>>> {
    let Some(a) = &cfg.arc else { return Ok(None) };
    let sealer = sealgate_crypto::arc::ArcSealer::load(
        &a.domain,
        &a.selector,
        &a.key_file,
        &cfg.server.hostname,
    )
    .context("arc.key_file")?;
    Ok(Some(Arc::new(sealer)))
}

/// This process's lease owner name: unique per process, so a restarted node never mistakes
/// an old lease for its own.
pub(crate) fn node_owner(cfg: &Config) -> String {
    format!(
        "{}:{}:{}",
        cfg.server.hostname,
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The delivery context for this process; it records through the node's `recorder`.
pub(crate) async fn delivery_context(
    cfg: &Config,
    queue: Queue,
    recorder: Recorder,
) -> anyhow::Result<DeliveryContext> {
    let d = &cfg.delivery;
    let sec = security(cfg, queue.store().clone())?;
    let dkim = all_dkim_keys(cfg, queue.store(), queue.key_ring()).await?;
    let owner = recorder.owner().to_owned();
    Ok(DeliveryContext {
        queue,
        resolver: sec.resolver,
        client: client_config(cfg),
        tls: TlsPolicy::Opportunistic(sec.verifiers.opportunistic_config()),
        rules: sealgate_types::Live::new(sec.rules),
        routes: sealgate_types::Live::new(Arc::new(routes(cfg))),
        discovery: sec.discovery,
        verifiers: sec.verifiers,
        encryption: sec.encryption,
        portal: portal_settings(cfg)?,
        smtp_port: d.smtp_port,
        retry: RetryPolicy {
            first_retry: cfg.queue.retry_first.0,
            max_delay: cfg.queue.retry_max.0,
            max_age: cfg.queue.max_age.0,
            jitter_percent: 20,
            delay_warning: cfg.queue.delay_warning.0,
        },
        lease: cfg.queue.lease.0,
        owner,
        recorder,
        hostname: cfg.server.hostname.clone(),
        max_connections: d.max_connections,
        max_connections_per_domain: d.max_connections_per_domain,
        poll_interval: d.poll_interval.0,
        shutdown_grace: cfg.server.shutdown_grace.0,
        connections: Default::default(),
        dkim: sealgate_types::Live::new(Arc::new(dkim)),
        arc: arc_sealer(cfg)?,
    })
}

/// The portal master key ring (`portal.master_key_file`), created with mode 0600 on first
/// use, like the sealing key. The portal web server opens messages with the same ring.
pub(crate) fn portal_master_key(cfg: &Config) -> anyhow::Result<Arc<KeyRing>> {
    let file = cfg.portal_master_key_file();
    let (ring, created) = KeyRing::load_or_create(&file)
        .with_context(|| format!("loading the portal master key ring {}", file.display()))?;
    if created {
        warn!(file = %file.display(), key_id = ring.active_id(), "created a new portal master key: back this file up");
    }
    Ok(Arc::new(ring))
}

/// What the portal worker needs, when `[portal]` is enabled (`None`: portal recipients are
/// held).
pub(crate) fn portal_settings(cfg: &Config) -> anyhow::Result<Option<Arc<PortalSettings>>> {
    let p = &cfg.portal;
    if !p.enabled {
        return Ok(None);
    }
    Ok(Some(Arc::new(PortalSettings {
        master: portal_master_key(cfg)?,
        public_url: p.public_url.clone(),
        grant_days: p.grant_days,
        organisation: p.organisation.clone(),
        notice_from: cfg.portal_notice_from(),
        notice_subject: p.notice_subject.clone(),
        hostname: cfg.server.hostname.clone(),
    })))
}

/// SMTP client settings (EHLO name, timeouts).
pub(crate) fn client_config(cfg: &Config) -> ClientConfig {
    let d = &cfg.delivery;
    ClientConfig {
        helo_name: d
            .helo_name
            .clone()
            .unwrap_or_else(|| cfg.server.hostname.clone()),
        connect_timeout: d.connect_timeout.0,
        greeting_timeout: d.greeting_timeout.0,
        command_timeout: d.command_timeout.0,
        data_timeout: d.data_timeout.0,
    }
}

/// How encrypted messages are made, from `[pgp]` and `[smime]` with their files read and
/// checked; a method is `None` when its section is turned off.
#[derive(Clone, Debug)]
pub(crate) struct Encryption {
    /// PGP/MIME: outer subject, archive key, signer.
    pub pgp: Option<PgpSettings>,
    /// S/MIME: settings, ciphers and the trust roots for recipients' certificates.
    pub smime: Option<SmimeSetup>,
}

/// `[smime]` ready to use.
#[derive(Clone, Debug)]
pub(crate) struct SmimeSetup {
    /// Outer subject and signer.
    pub settings: SmimeSettings,
    /// The default content cipher.
    pub cipher: ContentCipher,
    /// Addresses or domains (lowercase) that get AES-256-CBC instead.
    pub cbc_for: Vec<String>,
    /// Roots and CRLs recipients' certificates must chain to.
    pub trust: TrustStore,
}

/// Reads and checks the files `[pgp]` and `[smime]` name (signing keys, archive key, CA file,
/// CRLs). Fails naming each unusable file and why.
pub(crate) fn encryption(cfg: &Config) -> anyhow::Result<Encryption> {
    encryption_checked(cfg).map_err(|p| anyhow::anyhow!("{}", p.join("; ")))
}

/// Like [`encryption`], with every problem (each naming its key and file) on its own.
pub(crate) fn encryption_checked(cfg: &Config) -> Result<Encryption, Vec<String>> {
    let mut problems = Vec::new();
    let pgp = cfg
        .pgp
        .enabled
        .then(|| pgp_settings(&cfg.pgp, &mut problems));
    let smime = cfg.smime.enabled.then(|| smime_setup(cfg, &mut problems));
    if problems.is_empty() {
        Ok(Encryption {
            pgp,
            smime: smime.flatten(),
        })
    } else {
        Err(problems)
    }
}

/// The trust roots (`smime.ca_file`, or the system's) and CRLs (`smime.crl_files`) for
/// recipients' certificates.
pub(crate) fn smime_trust(cfg: &Config) -> anyhow::Result<TrustStore> {
    let ca = match &cfg.smime.ca_file {
        Some(path) => Some(read_file("smime.ca_file", path)?),
        None => None,
    };
    let crls = cfg
        .smime
        .crl_files
        .iter()
        .enumerate()
        .map(|(i, p)| read_file(&format!("smime.crl_files[{i}]"), p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    TrustStore::new(ca.as_deref(), &crls).map_err(|e| {
        let files = cfg.smime.ca_file.iter().chain(&cfg.smime.crl_files);
        let files: Vec<String> = files.map(|p| p.display().to_string()).collect();
        let files = if files.is_empty() {
            "the system trust roots".to_owned()
        } else {
            files.join(", ")
        };
        anyhow::anyhow!("smime.ca_file/crl_files: {files}: {e}")
    })
}

fn read_file(key: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{key}: cannot read {}", path.display()))
}

fn pgp_settings(c: &sealgate_config::PgpConfig, problems: &mut Vec<String>) -> PgpSettings {
    let mut settings = PgpSettings {
        subject: c.subject.clone(),
        ..PgpSettings::default()
    };
    if let Some(path) = &c.signing_key {
        match read_file("pgp.signing_key", path).and_then(|data| {
            PgpSigner::from_bytes(&data)
                .with_context(|| format!("pgp.signing_key: {}", path.display()))
        }) {
            Ok(signer) => settings.signer = Some(signer),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if let Some(path) = &c.archive_key {
        match read_file("pgp.archive_key", path).and_then(|data| archive_key(path, &data)) {
            Ok(cert) => settings.archive = Some(cert),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    settings
}

/// The one usable OpenPGP certificate in `data`.
fn archive_key(path: &std::path::Path, data: &[u8]) -> anyhow::Result<PgpCert> {
    let shown = path.display();
    let mut certs =
        PgpCert::parse_all(data).with_context(|| format!("pgp.archive_key: {shown}"))?;
    if certs.len() != 1 {
        anyhow::bail!(
            "pgp.archive_key: {shown}: holds {} certificates, expected one",
            certs.len()
        );
    }
    let cert = certs.remove(0);
    let info = cert.info(sealgate_types::time::now_micros() / 1_000_000);
    match info.status {
        Ok(_) => Ok(cert),
        Err(problem) => anyhow::bail!("pgp.archive_key: {shown}: {}: {problem}", info.fingerprint),
    }
}

fn smime_setup(cfg: &Config, problems: &mut Vec<String>) -> Option<SmimeSetup> {
    let c = &cfg.smime;
    let trust = smime_trust(cfg)
        .map_err(|e| problems.push(format!("{e:#}")))
        .ok();
    let mut settings = SmimeSettings {
        subject: c.subject.clone(),
        signer: None,
    };
    if let (Some(cert), Some(key)) = (&c.signing_cert, &c.signing_key) {
        let loaded = read_file("smime.signing_cert", cert).and_then(|cert_pem| {
            let key_pem = read_file("smime.signing_key", key)?;
            SmimeSigner::from_pem(&cert_pem, &key_pem).with_context(|| {
                format!(
                    "smime.signing_cert/signing_key: {} / {}",
                    cert.display(),
                    key.display()
                )
            })
        });
        match loaded {
            Ok(signer) => settings.signer = Some(signer),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    let cipher = match c.cipher {
        SmimeCipher::Aes256Gcm => ContentCipher::Aes256Gcm,
        SmimeCipher::Aes256Cbc => ContentCipher::Aes256Cbc,
    };
    Some(SmimeSetup {
        settings,
        cipher,
        cbc_for: c.cbc_for.iter().map(|e| e.to_lowercase()).collect(),
        trust: trust?,
    })
}
