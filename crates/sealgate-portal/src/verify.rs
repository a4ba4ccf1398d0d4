//! Before the session: the verify page, sending a one-time code, and checking a code or
//! passphrase (attempt limits and lockout through the store).

use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sealgate_audit::AuditEvent;
use sealgate_queue::{IncomingMessage, ORIGIN_NOTICE, data_digest};
use sealgate_store::{GrantRow, PortalSessionRow};
use sealgate_types::{MessageId, time};
use serde::Deserialize;
use tracing::info;

use crate::access::{self, locked};
use crate::compose::{Draft, code_body, new_message_id, render};
use crate::guard::{CSRF, Client, refuse};
use crate::page::{self, VerifyView};
use crate::secret::{
    code_hash, ct_eq, is_token_shaped, new_code, new_token, normalize_code, token_hash,
};
use crate::web::{
    CSRF_COOKIE, Handled, SESSION_COOKIE, cookie, cookie_name, html, invalid_link, see_other,
    set_cookie,
};
use crate::{Ctx, PortalError};

/// Lifetime of the pre-session CSRF cookie, seconds.
const CSRF_COOKIE_SECS: u64 = 3600;

/// The fields of the code and verify forms. Absent fields are empty, so a form without its
/// CSRF token is refused as such (403) rather than as malformed.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct VerifyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    passphrase: String,
}

/// Microseconds of a duration, saturating.
pub(crate) fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// `b…@example.org`: enough for the recipient to recognise, little for anyone else.
fn masked(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => "your address".to_owned(),
    }
}

/// The verify page with an optional note, as `status`.
fn verify_page(
    ctx: &Ctx,
    token: &str,
    csrf: &str,
    grant: &GrantRow,
    notes: (Option<String>, Option<String>),
    status: StatusCode,
) -> Response {
    let view = VerifyView {
        token,
        csrf,
        organisation: &ctx.settings.organisation,
        has_passphrase: grant.passphrase_hash.is_some(),
        notice: notes.0,
        error: notes.1,
    };
    html(status, page::verify(&view))
}

fn locked_note(grant: &GrantRow) -> Option<String> {
    let until = time::from_micros(grant.locked_until.unwrap_or_default());
    Some(format!(
        "Too many wrong attempts. This link is locked until {} UTC.",
        until.format("%H:%M")
    ))
}

/// The pre-session CSRF token of link `token`, when the form's copy matches the cookie's
/// (double submit).
fn double_submit(headers: &HeaderMap, token: &str, form: &VerifyForm) -> Option<String> {
    let cookie =
        cookie(headers, &cookie_name(CSRF_COOKIE, token)).filter(|c| is_token_shaped(c))?;
    ct_eq(&cookie, &form.csrf).then_some(cookie)
}

/// `?signed_out=1` after signing out (a flag).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct IndexQuery {
    #[serde(default)]
    signed_out: Option<String>,
}

/// GET /p/{token}: with a session, on to the thread; without, the verify page (and a fresh
/// pre-session CSRF cookie unless the browser has one).
pub(crate) async fn index(
    State(ctx): State<Ctx>,
    Path(token): Path<String>,
    Query(q): Query<IndexQuery>,
    headers: HeaderMap,
) -> Handled {
    let now = time::now_micros();
    let Some(grant) = access::grant(&ctx, &token, now).await? else {
        return Ok(invalid_link());
    };
    if access::session(&ctx, &grant, &token, &headers, now)
        .await?
        .is_some()
    {
        return Ok(see_other(&format!("/p/{token}/thread"), Vec::new()));
    }
    let name = cookie_name(CSRF_COOKIE, &token);
    let csrf = match cookie(&headers, &name).filter(|c| is_token_shaped(c)) {
        Some(c) => c,
        None => new_token()?,
    };
    let notice = q.signed_out.map(|_| "You have signed out.".to_owned());
    let error = locked(&grant, now).then(|| locked_note(&grant)).flatten();
    let mut res = verify_page(&ctx, &token, &csrf, &grant, (notice, error), StatusCode::OK);
    res.headers_mut().append(
        axum::http::header::SET_COOKIE,
        set_cookie(&name, &csrf, CSRF_COOKIE_SECS),
    );
    Ok(res)
}

/// A POST to one of the verify page's forms.
struct Posted<'a> {
    token: &'a str,
    action: &'static str,
    client: Client,
    headers: &'a HeaderMap,
}

/// The common checks of the verify page's forms (send a code, verify): a live link, a form,
/// its CSRF token (double submit; refused and counted through the guard), and no lockout.
/// `Err` is the page to answer instead.
async fn accept_post(
    ctx: &Ctx,
    post: Posted<'_>,
    form: Result<Form<VerifyForm>, FormRejection>,
    now: i64,
) -> Result<Result<(GrantRow, VerifyForm, String), Response>, crate::web::Failure> {
    let token = post.token;
    let Some(grant) = access::grant(ctx, token, now).await? else {
        return Ok(Err(invalid_link()));
    };
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let Some(csrf) = double_submit(post.headers, token, &form) else {
        let refused = refuse(ctx, post.client, post.action, CSRF, None, Some(&grant)).await;
        return Ok(Err(refused));
    };
    if locked(&grant, now) {
        let notes = (None, locked_note(&grant));
        let page = verify_page(
            ctx,
            token,
            &csrf,
            &grant,
            notes,
            StatusCode::TOO_MANY_REQUESTS,
        );
        return Ok(Err(page));
    }
    Ok(Ok((grant, form, csrf)))
}

/// POST /p/{token}/code: a new code, emailed (queued as a phi-free notice) and audited.
pub(crate) async fn send_code(
    State(ctx): State<Ctx>,
    Path(token): Path<String>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    form: Result<Form<VerifyForm>, FormRejection>,
) -> Handled {
    let now = time::now_micros();
    let post = Posted {
        token: &token,
        action: "code",
        client,
        headers: &headers,
    };
    let (grant, _, csrf) = match accept_post(&ctx, post, form, now).await? {
        Ok(posted) => posted,
        Err(refused) => return Ok(refused),
    };
    let sent = format!(
        "We emailed a code to {}. Enter it below.",
        masked(&grant.recipient)
    );
    if recently_sent(&ctx, &grant, now) {
        let notes = (
            Some(format!("{sent} (A new code can be asked for in a minute.)")),
            None,
        );
        return Ok(verify_page(
            &ctx,
            &token,
            &csrf,
            &grant,
            notes,
            StatusCode::OK,
        ));
    }
    queue_code(&ctx, &grant, now).await?;
    Ok(verify_page(
        &ctx,
        &token,
        &csrf,
        &grant,
        (Some(sent), None),
        StatusCode::OK,
    ))
}

/// A code was issued less than the resend interval ago.
fn recently_sent(ctx: &Ctx, grant: &GrantRow, now: i64) -> bool {
    let issued = grant
        .code_expires_at
        .map(|exp| exp.saturating_sub(micros(ctx.settings.code_ttl)));
    issued.is_some_and(|at| now.saturating_sub(at) < micros(ctx.settings.code_resend_interval))
}

/// Draws a code, stores its hash on the grant and queues the email, in one transaction.
async fn queue_code(ctx: &Ctx, grant: &GrantRow, now: i64) -> Result<(), PortalError> {
    let s = &ctx.settings;
    let code = new_code()?;
    let body = code_body(&s.organisation, &code, s.code_ttl.as_secs().div_ceil(60));
    let from = format!("{} <{}>", s.organisation, s.notice_from);
    let draft = Draft {
        from: &from,
        to: &grant.recipient,
        sender: None,
        subject: &format!("Your code for the secure message from {}", s.organisation),
        in_reply_to: None,
        references: &[],
        auto_submitted: true,
        body: &body,
    };
    let msg = outgoing(ctx, &s.notice_from, &grant.recipient, &draft, ORIGIN_NOTICE);
    let prepared = ctx.queue.prepare(msg)?;
    let notice_id = prepared.message.id.clone();
    let audit = AuditEvent::PortalCodeSent {
        grant_id: grant.id.clone(),
        recipient: grant.recipient.clone(),
        notice_id: notice_id.clone(),
    }
    .into_record();
    let expires = now.saturating_add(micros(s.code_ttl));
    ctx.store
        .portal_set_code(
            &grant.id,
            &code_hash(&grant.id, &code),
            expires,
            &prepared.into_parts(),
            &audit,
        )
        .await?;
    info!(grant_id = %grant.id, notice_id = %notice_id, "portal code sent");
    Ok(())
}

/// A message the portal writes, ready for [`sealgate_queue::Queue::prepare`].
pub(crate) fn outgoing(
    ctx: &Ctx,
    envelope_sender: &str,
    to: &str,
    draft: &Draft<'_>,
    origin: &str,
) -> IncomingMessage {
    let header_id = new_message_id(&ctx.hostname);
    let content = render(draft, &header_id, chrono::Utc::now());
    IncomingMessage {
        id: MessageId::new(),
        sender: envelope_sender.to_owned(),
        recipients: vec![to.to_owned()],
        client_data_sha256: data_digest(&content),
        client_data_size: content.len() as u64,
        header_message_id: Some(format!("<{header_id}>")),
        content,
        client_ip: "127.0.0.1".to_owned(),
        helo: ctx.hostname.clone(),
        auth_user: None,
        tls: None,
        requiretls: false,
        origin: Some(origin.to_owned()),
        tenant: None,
        api_key: None,
    }
}

/// POST /p/{token}/verify: a code or passphrase; right → session cookie and 303 to the
/// thread; wrong → counted (locking after the limit) and the form again.
pub(crate) async fn verify(
    State(ctx): State<Ctx>,
    Path(token): Path<String>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    form: Result<Form<VerifyForm>, FormRejection>,
) -> Handled {
    let now = time::now_micros();
    let post = Posted {
        token: &token,
        action: "verify",
        client,
        headers: &headers,
    };
    let (grant, form, csrf) = match accept_post(&ctx, post, form, now).await? {
        Ok(posted) => posted,
        Err(refused) => return Ok(refused),
    };
    let how = match check(&grant, &form, now).await {
        Check::Empty => {
            let notes = (None, Some("Enter the code from the email.".to_owned()));
            return Ok(verify_page(
                &ctx,
                &token,
                &csrf,
                &grant,
                notes,
                StatusCode::BAD_REQUEST,
            ));
        }
        Check::Wrong => return failed(&ctx, &token, &csrf, &grant, now).await,
        Check::Right(how) => how,
    };
    open_session(&ctx, &token, &grant, how, now).await
}

/// The outcome of checking what was typed.
enum Check {
    /// Nothing was typed: not an attempt.
    Empty,
    /// Wrong, expired or no pending code, or a wrong passphrase: an attempt.
    Wrong,
    /// Proven, by `code` or `passphrase`.
    Right(&'static str),
}

/// Checks the typed code (fixed-time against the stored hash) or passphrase (argon2, whose
/// comparison is fixed-time too).
async fn check(grant: &GrantRow, form: &VerifyForm, now: i64) -> Check {
    if !form.code.trim().is_empty() {
        return match code_matches(grant, &form.code, now) {
            true => Check::Right("code"),
            false => Check::Wrong,
        };
    }
    if form.passphrase.is_empty() {
        return Check::Empty;
    }
    let Some(hash) = grant.passphrase_hash.clone() else {
        return Check::Wrong;
    };
    let typed = form.passphrase.clone();
    let ok = tokio::task::spawn_blocking(move || sealgate_crypto::verify_password(&typed, &hash))
        .await
        .unwrap_or(false);
    if ok {
        Check::Right("passphrase")
    } else {
        Check::Wrong
    }
}

/// True when `typed` is the grant's pending, unexpired code.
pub(crate) fn code_matches(grant: &GrantRow, typed: &str, now: i64) -> bool {
    let (Some(stored), Some(expires)) = (&grant.code_hash, grant.code_expires_at) else {
        return false;
    };
    let Some(code) = normalize_code(typed) else {
        return false;
    };
    expires > now && ct_eq(&code_hash(&grant.id, &code), stored)
}

/// Counts a failed attempt (locking at the limit) and shows the form again.
async fn failed(ctx: &Ctx, token: &str, csrf: &str, grant: &GrantRow, now: i64) -> Handled {
    let s = &ctx.settings;
    let max = i64::from(s.max_code_attempts.max(1));
    let count = grant.failed_attempts.saturating_add(1);
    let locking = count >= max;
    let audit = AuditEvent::PortalCodeFailed {
        grant_id: grant.id.clone(),
        recipient: grant.recipient.clone(),
        failed_attempts: if locking { 0 } else { count },
        locked: locking,
    }
    .into_record();
    let until = now.saturating_add(micros(s.lockout));
    let after = ctx
        .store
        .portal_fail_attempt(&grant.id, max, until, &audit)
        .await?;
    info!(grant_id = %grant.id, locked = locking, "portal verification failed");
    if locked(&after, now) {
        let notes = (None, locked_note(&after));
        return Ok(verify_page(
            ctx,
            token,
            csrf,
            &after,
            notes,
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let left = max.saturating_sub(after.failed_attempts);
    let notes = (
        None,
        Some(format!("That was not right. {left} attempts left.")),
    );
    Ok(verify_page(
        ctx,
        token,
        csrf,
        &after,
        notes,
        StatusCode::FORBIDDEN,
    ))
}

/// Stores a new session and sets its cookie (dropping the pre-session CSRF cookie).
async fn open_session(ctx: &Ctx, token: &str, grant: &GrantRow, how: &str, now: i64) -> Handled {
    let value = new_token()?;
    let ttl = ctx.settings.session_ttl;
    let row = PortalSessionRow {
        id_hash: token_hash(&value),
        grant_id: grant.id.clone(),
        csrf: new_token()?,
        expires_at: now.saturating_add(micros(ttl)),
    };
    let audit = AuditEvent::PortalVerified {
        grant_id: grant.id.clone(),
        recipient: grant.recipient.clone(),
        how: how.to_owned(),
    }
    .into_record();
    ctx.store
        .portal_open_session(&grant.id, &row, &audit)
        .await?;
    info!(grant_id = %grant.id, how, "portal session opened");
    let cookies = vec![
        set_cookie(&cookie_name(SESSION_COOKIE, token), &value, ttl.as_secs()),
        set_cookie(&cookie_name(CSRF_COOKIE, token), "", 0),
    ];
    Ok(see_other(&format!("/p/{token}/thread"), cookies).into_response())
}
