//! The configured profile against what the CA offers, checked at start, and timing
//! settings that do not fit the certificate's lifetime.

use std::time::Duration;

use clawveil_tls::CertInfo;

use super::Manager;
use crate::error::AcmeError;
use crate::order::check_profile;
use crate::schedule::lifetime;

/// How long the check at start may take before the CA counts as unreachable for now.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

impl Manager {
    /// With `acme.profile` set: fetches the directory (loading or creating the account)
    /// and refuses a profile the CA does not advertise. A CA that cannot be reached now
    /// is no error: the profile is checked again before every order.
    pub(crate) async fn check_profile_at_start(&mut self) -> Result<(), AcmeError> {
        let Some(profile) = self.cfg.profile.clone() else {
            return Ok(());
        };
        let timeout = CHECK_TIMEOUT.min(self.opts.attempt_timeout);
        let account = match tokio::time::timeout(timeout, self.account(false)).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                tracing::warn!(directory = %self.client.directory, profile = %profile, step = %e.step, detail = %e.detail, "cannot check acme.profile against the CA's directory now; it is checked again before every order");
                return Ok(());
            }
            Err(_) => {
                tracing::warn!(directory = %self.client.directory, profile = %profile, "the CA did not answer within {timeout:?}; acme.profile is checked again before every order");
                return Ok(());
            }
        };
        check_profile(&account, &profile, &self.client.directory)?;
        tracing::info!(directory = %self.client.directory, profile = %profile, "the CA offers the configured profile");
        Ok(())
    }

    /// Says so when `renew_before` makes every certificate of this lifetime due at once.
    pub(super) fn warn_renew_before(&self, info: &CertInfo) {
        let life = lifetime(info);
        if let Some(before) = self.cfg.renew_before.filter(|b| *b >= life) {
            tracing::warn!(
                domains = ?self.cfg.domains,
                renew_before = %humantime::format_duration(before),
                lifetime = %humantime::format_duration(life),
                "acme.renew_before is not shorter than the certificate's lifetime: every certificate is due at once and renewed as often as allowed; leave renew_before unset to renew when a third of the lifetime remains"
            );
        }
    }
}
