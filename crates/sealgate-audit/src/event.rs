//! The audit-event taxonomy. Each variant is one `kind`; its fields become the row's JSON data
//! (see `record` for how).

use sealgate_types::time::rfc3339_micros;

/// Something that happened to a message, recorded in the audit log. More kinds (`attempt`,
/// `delivered`, `deferred`, `bounced`, `decision`) are added as the code that emits them lands.
///
/// Serializing an event gives its row's data (`record`): the fields that are the row's
/// message and recipient columns are skipped, times are written as RFC 3339, and the
/// variant's name is its `kind`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    /// Ingress accepted a message and queued it (written with the message row).
    Received {
        /// The queue id.
        #[serde(skip)]
        message_id: String,
        /// The SMTP client's address.
        client_ip: String,
        /// The EHLO/HELO name it gave.
        helo: String,
        /// Protocol and cipher of the session, e.g. `TLSv1.3 TLS13_AES_256_GCM_SHA384`;
        /// `None` for plaintext.
        tls: Option<String>,
        /// The authenticated user, if any.
        auth_user: Option<String>,
        /// The envelope sender; empty for the null reverse-path.
        sender: String,
        /// The accepted recipients.
        recipients: Vec<String>,
        /// Message size in bytes.
        size: u64,
        /// SHA-256 of the message as received (hex).
        body_sha256: String,
        /// The `Message-ID:` header, if any.
        header_message_id: Option<String>,
        /// The client gave REQUIRETLS (RFC 8689) on MAIL FROM. Stored only when true, so a
        /// record without the field (every record from before REQUIRETLS) reads as false.
        #[serde(skip_serializing_if = "is_false")]
        requiretls: bool,
        /// The cloud tenant (`[[relay.tenant]]`) the message was relayed for, with the
        /// factors that matched. Stored only for such messages.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<TenantMatch>,
        /// The API key (public id) a message submitted through the REST API came with.
        /// Stored only for such messages.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<String>,
        /// Who wrote the message when not an SMTP client: `api`, `portal-notice`,
        /// `portal-reply`. Stored only then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<String>,
    },
    /// The policy engine's decision for one recipient, written before any delivery attempt:
    /// the protection level, the method chosen, the fallback chain and the evidence.
    Decision {
        /// The queue id.
        #[serde(skip)]
        message_id: String,
        /// The recipient.
        #[serde(skip)]
        recipient: String,
        /// `required` or `none`.
        level: String,
        /// The rule that set the level (`org default`, `domain override`, ...).
        level_source: String,
        /// The chosen method (the head of `chain`).
        method: String,
        /// The ordered fallback chain, chosen method first.
        chain: Vec<String>,
        /// What was probed and found, which rules fired, why preferred methods were skipped.
        evidence: Vec<String>,
        /// Alerts raised (also written as separate `alert` events).
        alerts: Vec<String>,
    },
    /// A security alert an operator must see: a possible downgrade attack, a DNSSEC-bogus
    /// answer, a verified-TLS failure for a domain that had verified TLS before.
    Alert {
        /// The queue id, when the alert arose for a message.
        #[serde(skip)]
        message_id: Option<String>,
        /// The recipient, when the alert arose for one.
        #[serde(skip)]
        recipient: Option<String>,
        /// The recipient domain concerned.
        domain: String,
        /// What happened.
        alert: String,
    },
    /// One delivery attempt for one recipient: where it went, how, and what came back.
    Attempt {
        /// The queue id.
        #[serde(skip)]
        message_id: String,
        /// The recipient.
        #[serde(skip)]
        recipient: String,
        /// Evidence about the connection and the reply.
        #[serde(flatten)]
        evidence: AttemptEvidence,
    },
    /// A node began sending this recipient's message (its data phase was cleared to start)
    /// and stopped before it recorded the outcome: the remote server may hold the message
    /// already. The recipient is sent again, so nothing is lost; this record is how a copy
    /// delivered twice is accounted for (RFC 1047). Written by the node that takes it over.
    PossibleDuplicate {
        /// The queue id.
        #[serde(skip)]
        message_id: String,
        /// The recipient.
        #[serde(skip)]
        recipient: String,
        /// The lease owner (node) that was sending.
        previous_owner: String,
        /// When that node was cleared to send (microseconds since the epoch); stored as
        /// RFC 3339.
        #[serde(serialize_with = "rfc3339")]
        sending_since: i64,
    },
    /// The next hop accepted the message for this recipient.
    Delivered {
        /// The queue id.
        #[serde(skip)]
        message_id: String,
        /// The recipient.
        #[serde(skip)]
        recipient: String,
        /// The accepting host.
        mx: String,
        /// Its final reply.
        reply: String,
    },
    /// A temporary failure: tried again later.
    Deferred {
        /// The queue id.
        #[serde(skip)]
        message_id: String,
        /// The recipient.
        #[serde(skip)]
        recipient: String,
        /// Why.
        reason: String,
        /// When the next attempt is due (microseconds since the epoch).
        next_attempt_at: i64,
        /// The wait is the policy's, not the remote side's: the hold's name
        /// (`portal-disabled`, ...). Absent for a remote or connection failure.
        #[serde(skip_serializing_if = "Option::is_none")]
        held: Option<String>,
    },
    /// A permanent failure, or too old to keep trying: the sender gets a DSN (unless null).
    Bounced {
        /// The queue id.
        #[serde(skip)]
        message_id: String,
        /// The recipient.
        #[serde(skip)]
        recipient: String,
        /// Why.
        reason: String,
    },
    /// An operator made a waiting recipient due now (`sealgate queue retry`).
    RetryRequested {
        /// The queue id.
        #[serde(skip)]
        message_id: String,
        /// The recipient.
        #[serde(skip)]
        recipient: String,
        /// Who ran the command.
        operator: String,
    },
    /// An operator added an SMTP AUTH user or changed its password (who may relay changed).
    UserSaved {
        /// The user name.
        #[serde(rename = "user")]
        name: String,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// An operator removed an SMTP AUTH user.
    UserRemoved {
        /// The user name.
        #[serde(rename = "user")]
        name: String,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// An operator imported a recipient's OpenPGP key or S/MIME certificate
    /// (`sealgate keys import`): from now on it may be used to encrypt to these addresses.
    KeyImported {
        /// `pgp` or `smime`.
        kind: String,
        /// The key's or certificate's fingerprint.
        fingerprint: String,
        /// The addresses it was stored for, lowercase.
        addresses: Vec<String>,
        /// When it expires (Unix seconds), if it does; stored as RFC 3339.
        #[serde(serialize_with = "unix_seconds_rfc3339")]
        expires: Option<i64>,
        /// What validation found at import: `usable: …`.
        status: String,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// An operator removed a stored key or certificate (`sealgate keys remove`).
    KeyRemoved {
        /// `pgp` or `smime`.
        kind: String,
        /// The key's or certificate's fingerprint.
        fingerprint: String,
        /// The addresses it was removed for.
        addresses: Vec<String>,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// A recipient's key or certificate was found (in the store or on the network), with
    /// whether it may be used.
    KeyDiscovered {
        /// The queue id, when the lookup was made for a message.
        #[serde(skip)]
        message_id: Option<String>,
        /// The recipient address looked up.
        #[serde(skip)]
        address: String,
        /// `pgp` or `smime`.
        kind: String,
        /// Where it was found: `store`, `wkd-advanced`, `wkd-direct`, `openpgpkey` or `smimea`.
        source: String,
        /// The key's or certificate's fingerprint.
        fingerprint: String,
        /// `usable: …` or `unusable: …`.
        validity: String,
    },
    /// The portal worker stored a message sealed for a recipient and queued its notice.
    PortalNotice {
        /// The queue id of the original message.
        #[serde(skip)]
        message_id: String,
        /// The recipient the grant is for.
        #[serde(skip)]
        recipient: String,
        /// The grant (what operators name in `sealgate portal`).
        grant_id: String,
        /// When the link expires (microseconds since the epoch); stored as RFC 3339.
        #[serde(serialize_with = "rfc3339")]
        expires: i64,
        /// The queue id of the notice.
        notice_id: String,
    },
    /// A one-time code was queued for a recipient (never the code itself).
    PortalCodeSent {
        /// The grant.
        grant_id: String,
        /// The recipient it was sent to.
        #[serde(skip)]
        recipient: String,
        /// The queue id of the email carrying it.
        notice_id: String,
    },
    /// A wrong or expired one-time code or passphrase was given.
    PortalCodeFailed {
        /// The grant.
        grant_id: String,
        /// Its recipient.
        #[serde(skip)]
        recipient: String,
        /// Failed attempts counted now (0 again once locked).
        failed_attempts: i64,
        /// This failure locked the grant.
        locked: bool,
    },
    /// A recipient proved control of the address: a session was opened.
    PortalVerified {
        /// The grant.
        grant_id: String,
        /// Its recipient.
        #[serde(skip)]
        recipient: String,
        /// `code` or `passphrase`.
        how: String,
    },
    /// A recipient read a message of the thread.
    PortalView {
        /// The grant.
        grant_id: String,
        /// Its recipient.
        #[serde(skip)]
        recipient: String,
        /// The message shown (its portal id).
        message_id: String,
    },
    /// A recipient downloaded an attachment.
    PortalDownload {
        /// The grant.
        grant_id: String,
        /// Its recipient.
        #[serde(skip)]
        recipient: String,
        /// Which attachment, as its link names it (`{n}/{m}`: message, then attachment).
        attachment: String,
        /// Its size in bytes.
        size: u64,
    },
    /// A recipient replied on the portal; the reply was queued to the original sender.
    PortalReply {
        /// The grant.
        grant_id: String,
        /// Its recipient (the reply's author).
        #[serde(skip)]
        recipient: String,
        /// The queue id of the reply.
        reply_id: String,
    },
    /// An operator revoked a grant (`sealgate portal revoke`).
    PortalRevoked {
        /// The grant.
        grant_id: String,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
        /// The grant's expiry (microseconds since the epoch); stored as RFC 3339.
        #[serde(serialize_with = "rfc3339")]
        expires: i64,
    },
    /// An operator moved a grant's expiry (`sealgate portal extend`).
    PortalExtended {
        /// The grant.
        grant_id: String,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
        /// The new expiry (microseconds since the epoch); stored as RFC 3339.
        #[serde(serialize_with = "rfc3339")]
        expires: i64,
    },
    /// Retention emptied a portal message's sealed content (its grants all ended).
    PortalPurged {
        /// The portal message.
        portal_message_id: String,
    },
    /// An SMTP client authenticated (RFC 4954). Never carries the secret.
    AuthSucceeded {
        /// The user name.
        user: String,
        /// The client's address.
        client_ip: String,
        /// `PLAIN` or `LOGIN`.
        mechanism: String,
    },
    /// An SMTP AUTH attempt failed its password check, or could not be decoded. Never carries
    /// the secret.
    AuthFailed {
        /// The user name given, when it could be decoded.
        user: Option<String>,
        /// The client's address.
        client_ip: String,
        /// `PLAIN` or `LOGIN`.
        mechanism: String,
        /// Why: `invalid credentials` or `malformed credentials`.
        reason: String,
    },
    /// Too many failed AUTH attempts: from now until `until`, AUTH from this client address
    /// (for this user, or for anyone) is refused with 454 4.7.0 without checking the password.
    /// Recorded once per throttling, not per refused attempt.
    AuthThrottled {
        /// The user, when the per-user limit was reached; absent for the per-address limit.
        user: Option<String>,
        /// The client address (an IPv6 /64 for IPv6 clients).
        client: String,
        /// Failures counted in the window.
        failures: u32,
        /// End of the cool-down (microseconds since the epoch); stored as RFC 3339.
        #[serde(serialize_with = "rfc3339")]
        until: i64,
    },
    // Portal request guards (issue #20): refusals, throttling and sign-out.
    /// The portal refused a state-changing request (a POST): it came from another origin, or
    /// its CSRF token was missing or wrong. Never the token, the link or the form.
    PortalRefused {
        /// The client's address (the network's: a /64 for IPv6 is how it is throttled).
        client_ip: String,
        /// The form: `code`, `verify`, `reply` or `signout`.
        action: String,
        /// `cross-site` (Sec-Fetch-Site), `foreign-origin`, `null-origin`, `foreign-referer`,
        /// `no-origin`, `csrf`, or `no-session` (a reply without a live session).
        reason: String,
        /// The `Origin` (or `Referer` origin, or `Sec-Fetch-Site` value) the request carried,
        /// shortened; none for a CSRF refusal.
        origin: Option<String>,
        /// The grant of the link, when the request got as far as finding it.
        grant_id: Option<String>,
        /// Its recipient.
        #[serde(skip)]
        recipient: Option<String>,
    },
    /// A client reached the limit of refused requests in the window: its state-changing
    /// requests get 429 until the window has passed (written once, when it starts).
    PortalThrottled {
        /// The client's address (as in `portal_refused`).
        client_ip: String,
        /// Refusals counted in the window.
        refusals: u32,
        /// The window, in seconds.
        window_secs: u64,
    },
    /// A recipient signed out: the session was ended on the server.
    PortalSignedOut {
        /// The grant.
        grant_id: String,
        /// Its recipient.
        #[serde(skip)]
        recipient: String,
    },
    /// An operator set which senders an SMTP AUTH user may use (`sealgate users add
    /// --sender`, `sealgate users senders`).
    UserSendersChanged {
        /// The user name.
        #[serde(rename = "user")]
        name: String,
        /// The whole binding now in force (`*` = any sender; empty = may not send).
        senders: Vec<String>,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// An operator stored a DKIM signing key in the database (`sealgate dkim keygen --store`):
    /// from the next (re)load, messages of its domain are signed with it.
    DkimKeyAdded {
        /// The signing domain (`d=`).
        domain: String,
        /// The selector (`s=`).
        selector: String,
        /// `rsa-sha256` or `ed25519-sha256`.
        algorithm: String,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// An operator removed a stored DKIM signing key (`sealgate dkim remove`).
    DkimKeyRemoved {
        /// The signing domain (`d=`).
        domain: String,
        /// The selector (`s=`).
        selector: String,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// An operator added an API key (`sealgate api-keys add`); its secret is never recorded.
    ApiKeyAdded {
        /// The key's public id.
        key_id: String,
        /// Its name.
        name: String,
        /// What it may do: `send`, `read`, `admin`.
        scopes: Vec<String>,
        /// The senders it may use (empty: any sender).
        senders: Vec<String>,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// An operator revoked an API key: it opens nothing from now on.
    ApiKeyRevoked {
        /// The key's public id.
        key_id: String,
        /// Its name.
        name: String,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// A request to the API under a known key id, served or refused (a revoked key, a wrong
    /// secret, a scope it lacks): who asked for what, and the answer.
    ApiRequest {
        /// The key's public id.
        key_id: String,
        /// The HTTP method.
        method: String,
        /// The path asked for.
        path: String,
        /// The status answered.
        status: u16,
        /// The client's address.
        client_ip: String,
    },
    /// An operator added a webhook endpoint (`sealgate webhooks add`, or the API); its secret is
    /// never recorded, and its URL only up to the host and port (a path may carry a token).
    WebhookAdded {
        /// The endpoint's id.
        endpoint_id: String,
        /// Scheme, host and port of its URL.
        target: String,
        /// The event types it takes (`*`: every type).
        events: Vec<String>,
        /// Who added it: the operating-system user, or `api:<key id>`.
        operator: String,
    },
    /// An operator removed a webhook endpoint with its undelivered events.
    WebhookRemoved {
        /// The endpoint's id.
        endpoint_id: String,
        /// Who removed it.
        operator: String,
    },
    /// A webhook endpoint was disabled: it answered `410 Gone`, or an operator disabled it. Its
    /// pending events wait; none are written for it until it is enabled.
    WebhookDisabled {
        /// The endpoint's id.
        endpoint_id: String,
        /// Why.
        reason: String,
        /// Who: an operator, or `dispatcher` for a `410`.
        operator: String,
    },
    /// An operator enabled a disabled webhook endpoint again.
    WebhookEnabled {
        /// The endpoint's id.
        endpoint_id: String,
        /// Who.
        operator: String,
    },
    /// An operator gave a webhook endpoint a new secret; the old one signs too until
    /// `previous_until`.
    WebhookRotated {
        /// The endpoint's id.
        endpoint_id: String,
        /// Until when the previous secret signs too; stored as RFC 3339.
        #[serde(serialize_with = "rfc3339")]
        previous_until: i64,
        /// Who.
        operator: String,
    },
    /// An operator made webhook events written in a time range due again.
    WebhookReplayed {
        /// The endpoint, or every endpoint when absent.
        endpoint_id: Option<String>,
        /// From (inclusive); stored as RFC 3339.
        #[serde(serialize_with = "rfc3339")]
        since: i64,
        /// To (exclusive); stored as RFC 3339.
        #[serde(serialize_with = "rfc3339")]
        until: i64,
        /// Delivered events were replayed too, not only dead ones.
        include_delivered: bool,
        /// How many events.
        events: u64,
        /// Who.
        operator: String,
    },
    /// A bounce to a return path of ours was tied to the recipient it names: the recipient
    /// was delivered and then sent back (the address does not work). It is now `returned`,
    /// and the original sender was sent a DSN.
    Returned {
        /// The queue id of the original message.
        #[serde(skip)]
        message_id: String,
        /// The recipient.
        #[serde(skip)]
        recipient: String,
        /// The status the report gave (`5.1.1`).
        status: String,
        /// The reply code in its diagnostic, if any.
        reply_code: Option<u16>,
        /// The diagnostic (cut short).
        diagnostic: String,
        /// The server that made the report (`Reporting-MTA`), if it said.
        reported_by: Option<String>,
        /// The address the bounce came from.
        client_ip: String,
        /// The queue id of the DSN sent to the original sender (none for a null sender).
        dsn_id: Option<String>,
    },
    /// Mail to the return-path domain that changed nothing: a token that is not ours (forged
    /// or mangled), a recipient returned already (a replay), or a report that is not a
    /// permanent failure (a delay notice, an auto-reply).
    BounceIgnored {
        /// The queue id, when the token was ours.
        #[serde(skip)]
        message_id: Option<String>,
        /// The recipient, when the token was ours.
        #[serde(skip)]
        recipient: Option<String>,
        /// The return-path address it was sent to.
        address: String,
        /// Why nothing changed.
        reason: String,
        /// The client's address.
        client_ip: String,
    },
    /// A client tried to send as an address its sender binding does not permit, in the
    /// envelope or in the header: refused with 553 5.7.1, nothing queued.
    SenderRefused {
        /// The SMTP client's address.
        client_ip: String,
        /// The authenticated user whose binding refused it, if the client had authenticated.
        auth_user: Option<String>,
        /// The `[[relay.client]]` whose binding refused it (its name, or its network), for a
        /// client that had not authenticated.
        network: Option<String>,
        /// Where the address was: `mail-from`, `header-from` or `header-sender`.
        field: String,
        /// The refused address (for a header that could not be read, its text, cut short).
        sender: String,
    },
}

/// `skip_serializing_if`: a flag that is stored only when set.
fn is_false(b: &bool) -> bool {
    !*b
}

/// Microseconds since the epoch as RFC 3339 UTC.
fn rfc3339<S: serde::Serializer>(micros: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_micros(*micros))
}

/// Unix seconds (a key's expiry) as RFC 3339 UTC; nothing when there is none.
fn unix_seconds_rfc3339<S: serde::Serializer>(at: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(secs) => s.serialize_str(&rfc3339_micros(secs.saturating_mul(1_000_000))),
        None => s.serialize_none(),
    }
}

impl AuditEvent {
    /// The stored kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Received { .. } => "received",
            Self::Decision { .. } => "decision",
            Self::Alert { .. } => "alert",
            Self::Attempt { .. } => "attempt",
            Self::PossibleDuplicate { .. } => "possible_duplicate",
            Self::Delivered { .. } => "delivered",
            Self::Deferred { .. } => "deferred",
            Self::Bounced { .. } => "bounced",
            Self::RetryRequested { .. } => "retry_requested",
            Self::UserSaved { .. } => "user_saved",
            Self::UserRemoved { .. } => "user_removed",
            Self::KeyImported { .. } => "key_imported",
            Self::KeyRemoved { .. } => "key_removed",
            Self::KeyDiscovered { .. } => "key_discovered",
            Self::PortalNotice { .. } => "portal_notice",
            Self::PortalCodeSent { .. } => "portal_code_sent",
            Self::PortalCodeFailed { .. } => "portal_code_failed",
            Self::PortalVerified { .. } => "portal_verified",
            Self::PortalView { .. } => "portal_view",
            Self::PortalDownload { .. } => "portal_download",
            Self::PortalReply { .. } => "portal_reply",
            Self::PortalRevoked { .. } => "portal_revoked",
            Self::PortalExtended { .. } => "portal_extended",
            Self::PortalPurged { .. } => "portal_purged",
            Self::AuthSucceeded { .. } => "auth_succeeded",
            Self::AuthFailed { .. } => "auth_failed",
            Self::AuthThrottled { .. } => "auth_throttled",
            Self::PortalRefused { .. } => "portal_refused",
            Self::PortalThrottled { .. } => "portal_throttled",
            Self::PortalSignedOut { .. } => "portal_signed_out",
            Self::UserSendersChanged { .. } => "user_senders_changed",
            Self::SenderRefused { .. } => "sender_refused",
            Self::DkimKeyAdded { .. } => "dkim_key_added",
            Self::DkimKeyRemoved { .. } => "dkim_key_removed",
            Self::ApiKeyAdded { .. } => "api_key_added",
            Self::ApiKeyRevoked { .. } => "api_key_revoked",
            Self::ApiRequest { .. } => "api_request",
            Self::WebhookAdded { .. } => "webhook_added",
            Self::WebhookRemoved { .. } => "webhook_removed",
            Self::WebhookDisabled { .. } => "webhook_disabled",
            Self::WebhookEnabled { .. } => "webhook_enabled",
            Self::WebhookRotated { .. } => "webhook_rotated",
            Self::WebhookReplayed { .. } => "webhook_replayed",
            Self::Returned { .. } => "returned",
            Self::BounceIgnored { .. } => "bounce_ignored",
        }
    }
}

/// The cloud tenant a message was relayed for, and which of its factors held (`network`,
/// `certificate`, `ms-tenant-id`, `secret-header`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TenantMatch {
    /// The tenant's name in `[[relay.tenant]]`.
    pub name: String,
    /// The factors that held.
    pub factors: Vec<String>,
}

/// What an attempt record says. Absent fields are left out of the stored data.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AttemptEvidence {
    /// The MX (or implicit) host name tried.
    pub mx: Option<String>,
    /// The address connected to.
    pub ip: Option<String>,
    /// TLS protocol version, when the session was encrypted.
    pub tls_version: Option<String>,
    /// TLS cipher suite.
    pub cipher: Option<String>,
    /// SHA-256 (hex) of the peer's leaf certificate.
    pub peer_cert_sha256: Option<String>,
    /// The delivery method of this attempt (`tls-verified`, `tls-opportunistic`).
    #[serde(default)]
    pub method: Option<String>,
    /// How the peer was verified (`dane`, `mta-sts`, `pinned`) or why it was not
    /// (`none: opportunistic`, `failed: ...`).
    #[serde(default)]
    pub verification: Option<String>,
    /// The reply code that decided the outcome, if a reply came.
    pub reply_code: Option<u16>,
    /// The reply text (or the connection error) that decided the outcome.
    pub reply: Option<String>,
    /// How the attempt ended, recorded by name (`delivered`, `temporary`, `permanent`,
    /// `held`).
    pub outcome: sealgate_types::Outcome,
}
