//! POST /p/{token}/signout: ends the session on the server (the stored session is deleted,
//! so its cookie opens nothing even if a copy of it survives), clears the cookie and returns
//! to the link's verify page.

use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, Form, Path, State};
use axum::http::HeaderMap;
use sealgate_audit::AuditEvent;
use sealgate_types::time;
use serde::Deserialize;
use tracing::info;

use crate::Ctx;
use crate::access;
use crate::guard::{CSRF, Client, refuse};
use crate::secret::ct_eq;
use crate::web::{Handled, SESSION_COOKIE, cookie_name, invalid_link, see_other, set_cookie};

/// The sign-out form: only its CSRF token.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// Signs out. Without a live session there is nothing to end: the cookie is cleared all the
/// same. With one, the form must carry the session's CSRF token (a forged sign-out is
/// refused, counted and audited like any other).
pub(crate) async fn signout(
    State(ctx): State<Ctx>,
    Path(token): Path<String>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    form: Result<Form<SignOutForm>, FormRejection>,
) -> Handled {
    let now = time::now_micros();
    let Some(grant) = access::grant(&ctx, &token, now).await? else {
        return Ok(invalid_link());
    };
    let name = cookie_name(SESSION_COOKIE, &token);
    let back = format!("/p/{token}?signed_out=1");
    let Some(session) = access::session(&ctx, &grant, &token, &headers, now).await? else {
        return Ok(see_other(&back, vec![set_cookie(&name, "", 0)]));
    };
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if !ct_eq(&form.csrf, &session.csrf) {
        return Ok(refuse(&ctx, client, "signout", CSRF, None, Some(&grant)).await);
    }
    let audit = AuditEvent::PortalSignedOut {
        grant_id: grant.id.clone(),
        recipient: grant.recipient.clone(),
    }
    .into_record();
    ctx.store
        .portal_end_session(&session.id_hash, &audit)
        .await?;
    info!(grant_id = %grant.id, "portal session ended by sign-out");
    Ok(see_other(&back, vec![set_cookie(&name, "", 0)]))
}
