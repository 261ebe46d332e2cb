//! An upstream built anew by a reload, keeping what its backends had.

use std::sync::Arc;
use std::time::Instant;

use super::{admin_state, members, picker, Upstream};
use crate::config::UpstreamSpec;
use pingora::lb::Backend;
use std::collections::BTreeSet;

impl Upstream {
    /// `spec` built anew (a reload changed it), each backend whose `addr`
    /// was in `old` keeping what it had there: its health (a backend that
    /// was down stays down until its checks pass — when `spec` checks
    /// health at all), its breaker (when the breaker settings are the same)
    /// its ejection (outlier detection) and its runtime override. In-flight counts and idle connections stay
    /// with `old` and end with their requests.
    pub fn rebuild(spec: Arc<UpstreamSpec>, old: &Upstream) -> Arc<Self> {
        let new = Self::fresh(spec);
        let same_breaker =
            format!("{:?}", new.spec.circuit_breaker) == format!("{:?}", old.spec.circuit_breaker);
        let checks = new.spec.health_check.is_some();
        for (i, b) in new.spec.backends.iter().enumerate() {
            let Some(j) = old.backend_index(&b.addr) else {
                // New here (a reload or DNS added it): with health checks,
                // no traffic before they pass.
                if checks {
                    new.health.restore_down(i);
                }
                continue;
            };
            if checks && old.spec.health_check.is_some() {
                new.health.carry(i, &old.health, j);
            }
            if same_breaker {
                new.breakers.carry(i, &old.breakers, j);
            }
            if let (Some(n), Some(o)) = (&new.outliers, &old.outliers) {
                n.carry(i, o, j, Instant::now());
            }
            let was = old.overrides.get(j);
            let configured = old.spec.backends[j].weight;
            new.overrides
                .set(i, admin_state::carried(was, configured, b.weight));
        }
        new.reweigh();
        Arc::new(new)
    }

    /// Rebuilds the selector over the effective weights (after overrides
    /// were set other than through [`Upstream::apply`]).
    pub(crate) fn reweigh(&self) {
        let set: BTreeSet<Backend> = members(&self.spec.backends, |i| {
            self.overrides.get(i).effective_weight()
        })
        .into_iter()
        .collect();
        let rebuilt = picker(self.spec.policy, &set, &self.ctx, &self.health);
        self.picker.store(Arc::new(rebuilt));
    }
}
