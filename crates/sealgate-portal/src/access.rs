//! Who may see what: the grant behind a link, the session behind a cookie, and the messages
//! of the thread a grant may see. Every other module reaches content only through here.

use axum::http::HeaderMap;
use sealgate_crypto::portal::{link_token_hash, open_message};
use sealgate_store::{GrantRow, PortalMessageRow, PortalSessionRow};
use tracing::warn;

use crate::secret::{is_token_shaped, token_hash};
use crate::web::{SESSION_COOKIE, cookie, cookie_name};
use crate::{Ctx, PortalError};

/// The grant a link token opens, when it is known, not revoked and not expired. Unknown,
/// revoked and expired are one answer (`None`), so the page cannot tell which.
pub(crate) async fn grant(
    ctx: &Ctx,
    token: &str,
    now: i64,
) -> Result<Option<GrantRow>, PortalError> {
    if !is_token_shaped(token) {
        return Ok(None);
    }
    let found = ctx
        .store
        .portal_grant_by_token_hash(&link_token_hash(token))
        .await?;
    Ok(found.filter(|g| g.revoked_at.is_none() && g.expires_at > now))
}

/// True while failed attempts keep the grant locked.
pub(crate) fn locked(grant: &GrantRow, now: i64) -> bool {
    grant.locked_until.is_some_and(|until| until > now)
}

/// The session the request's cookie for link `token` opens for THIS grant: a cookie of
/// another grant's session, an expired one or an unknown one is no session.
pub(crate) async fn session(
    ctx: &Ctx,
    grant: &GrantRow,
    token: &str,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<PortalSessionRow>, PortalError> {
    let name = cookie_name(SESSION_COOKIE, token);
    let Some(value) = cookie(headers, &name).filter(|v| is_token_shaped(v)) else {
        return Ok(None);
    };
    let found = ctx.store.portal_session(&token_hash(&value)).await?;
    Ok(found.filter(|s| s.grant_id == grant.id && s.expires_at > now))
}

/// The messages of the grant's thread this grant may see, oldest first: the message the
/// grant was made for, and what its recipient wrote. Indexes in URLs count in this list, so
/// no index reaches another recipient's messages.
pub(crate) async fn visible(
    ctx: &Ctx,
    grant: &GrantRow,
) -> Result<Vec<PortalMessageRow>, PortalError> {
    let all = ctx.store.portal_thread(&grant.thread_id).await?;
    Ok(all
        .into_iter()
        .filter(|m| {
            m.id == grant.portal_message_id || m.author.eq_ignore_ascii_case(&grant.recipient)
        })
        .collect())
}

/// The `n`th visible message, if there is one.
pub(crate) async fn nth(
    ctx: &Ctx,
    grant: &GrantRow,
    n: usize,
) -> Result<Option<PortalMessageRow>, PortalError> {
    Ok(visible(ctx, grant).await?.into_iter().nth(n))
}

/// A portal message's content, or `None` when it was purged or cannot be opened (logged).
pub(crate) fn open(ctx: &Ctx, msg: &PortalMessageRow) -> Option<Vec<u8>> {
    if msg.purged_at.is_some() || msg.content_sealed.is_empty() {
        return None;
    }
    match open_message(
        &ctx.master,
        &msg.key_sealed,
        &msg.content_sealed,
        msg.id.as_bytes(),
    ) {
        Ok(raw) => Some(raw),
        Err(e) => {
            warn!(portal_message_id = %msg.id, error = %e, "portal message cannot be opened");
            None
        }
    }
}
