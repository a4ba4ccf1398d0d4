//! The portal's listener: `sealgate-web`'s HTTPS (or plain HTTP behind a proxy) listener,
//! serving the portal's routes.

use tokio::sync::watch;
use tracing::info;

use crate::{PortalContext, PortalError, PortalSettings, router};

/// A bound portal listener, ready to [`run`].
pub type PortalListener = sealgate_web::WebListener;

impl From<sealgate_web::WebError> for PortalError {
    fn from(e: sealgate_web::WebError) -> Self {
        match e {
            sealgate_web::WebError::TlsFile { path, reason } => {
                PortalError::TlsFile { path, reason }
            }
            sealgate_web::WebError::Tls(e) => PortalError::Tls(e),
            sealgate_web::WebError::Bind { addr, source } => PortalError::Bind { addr, source },
        }
    }
}

/// Loads the certificate chain and key, and binds `settings.listen`.
pub async fn bind(settings: &PortalSettings) -> Result<PortalListener, PortalError> {
    Ok(sealgate_web::bind(settings.listen, settings.tls.as_ref()).await?)
}

/// Loads the certificate chain and key of `settings.tls` as [`bind`] does, without binding
/// (`sealgate config check`).
pub fn check_tls(settings: &PortalSettings) -> Result<(), PortalError> {
    match &settings.tls {
        Some((cert, key)) => Ok(sealgate_web::check_tls(cert, key)?),
        None => Ok(()),
    }
}

/// Binds, logs "portal listener bound", and serves until `shutdown` turns true.
pub async fn serve(ctx: PortalContext, shutdown: watch::Receiver<bool>) -> Result<(), PortalError> {
    let listener = bind(&ctx.settings).await?;
    info!(addr = %listener.local_addr, tls = listener.is_tls(), "portal listener bound");
    run(ctx, listener, shutdown).await;
    Ok(())
}

/// Serves `listener` until `shutdown` turns true; then stops accepting and lets open
/// connections finish their requests for up to the shutdown grace.
pub async fn run(ctx: PortalContext, listener: PortalListener, shutdown: watch::Receiver<bool>) {
    let grace = ctx.settings.shutdown_grace;
    sealgate_web::run_app(router(ctx), listener, grace, shutdown).await;
}
