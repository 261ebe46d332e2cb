//! Runtime overrides from the admin write API: per backend, whether an
//! operator drained or disabled it, and the weight it runs with.
//!
//! One `AtomicU32` per backend (state in the high half, weight in the low
//! half), so the request path reads it without a lock. Writers (the admin
//! listener) store the new value and then rebuild the upstream's selector,
//! which is how weighted policies see a new weight.
//!
//! - `enabled`: the runtime weight (the configured one until changed).
//! - `drain`: weight 0, so no new requests; sticky clients are still served.
//! - `disabled`: no request at all, sticky ones neither, as if down.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};

use pingora::lb::Backend;

use super::{members, picker, Upstream};
use crate::config::Policy;
use crate::config::MAX_RING_WEIGHT;

/// What an operator made of a backend at runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminState {
    Enabled,
    Drain,
    Disabled,
}

impl AdminState {
    /// The name `/status` shows.
    pub fn name(self) -> &'static str {
        match self {
            AdminState::Enabled => "enabled",
            AdminState::Drain => "drain",
            AdminState::Disabled => "disabled",
        }
    }

    /// The state [`AdminState::name`] names (the state file's spelling).
    pub fn from_name(name: &str) -> Option<Self> {
        [AdminState::Enabled, AdminState::Drain, AdminState::Disabled]
            .into_iter()
            .find(|s| s.name() == name)
    }

    fn tag(self) -> u32 {
        match self {
            AdminState::Enabled => 0,
            AdminState::Drain => 1,
            AdminState::Disabled => 2,
        }
    }

    fn from_tag(tag: u32) -> Self {
        match tag {
            1 => AdminState::Drain,
            2 => AdminState::Disabled,
            _ => AdminState::Enabled,
        }
    }
}

/// One backend's override as read: its state and its runtime weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Override {
    pub state: AdminState,
    /// The weight `enable` goes back to or `PUT .../weight` set; what the
    /// selector uses while `Enabled`.
    pub weight: u16,
}

impl Override {
    /// The weight selection uses: 0 unless enabled.
    pub fn effective_weight(self) -> u32 {
        match self.state {
            AdminState::Enabled => u32::from(self.weight),
            AdminState::Drain | AdminState::Disabled => 0,
        }
    }

    fn pack(self) -> u32 {
        (self.state.tag() << 16) | u32::from(self.weight)
    }

    fn unpack(v: u32) -> Self {
        Self {
            state: AdminState::from_tag(v >> 16),
            weight: (v & 0xffff) as u16,
        }
    }
}

/// The overrides of one upstream's backends, by backend index.
pub struct Overrides {
    slots: Box<[AtomicU32]>,
}

impl Overrides {
    /// Every backend enabled at its configured weight (clamped to u16; the
    /// config allows at most 1000).
    pub fn new(configured: impl IntoIterator<Item = u32>) -> Self {
        let slots = configured
            .into_iter()
            .map(|w| {
                let o = Override {
                    state: AdminState::Enabled,
                    weight: u16::try_from(w).unwrap_or(u16::MAX),
                };
                AtomicU32::new(o.pack())
            })
            .collect();
        Self { slots }
    }

    /// Backend `index`'s override (enabled, weight 0 if out of range).
    pub fn get(&self, index: usize) -> Override {
        self.slots.get(index).map_or(Override::unpack(0), |s| {
            Override::unpack(s.load(Ordering::Acquire))
        })
    }

    pub fn set(&self, index: usize, o: Override) {
        if let Some(slot) = self.slots.get(index) {
            slot.store(o.pack(), Ordering::Release);
        }
    }

    /// Whether backend `index` may take new requests: enabled, weight > 0.
    pub fn takes_new(&self, index: usize) -> bool {
        self.get(index).effective_weight() > 0
    }

    /// Whether backend `index` may take any request (sticky ones included).
    pub fn serves(&self, index: usize) -> bool {
        self.get(index).state != AdminState::Disabled
    }
}

/// The override a backend keeps across a reload that changed its upstream:
/// its state always; its weight when an operator set one (an enabled
/// backend at its configured weight follows the new configured weight).
pub fn carried(was: Override, configured: u32, now_configured: u32) -> Override {
    if u32::from(was.weight) != configured {
        return was;
    }
    Override {
        state: was.state,
        weight: u16::try_from(now_configured).unwrap_or(u16::MAX),
    }
}

/// What an operator asks of one backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Drain,
    Disable,
    /// Back to the configured weight.
    Enable,
    /// Enabled at this weight; 0 drains.
    Weight(u16),
}

/// A change the upstream cannot take.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("the weights would sum to {0}, over consistent_hash's limit of 10000 (160 ring points per unit)")]
    RingTooLarge(u64),
}

impl Upstream {
    /// The index of the backend whose configured `addr` is `addr`.
    pub fn backend_index(&self, addr: &str) -> Option<usize> {
        self.spec.backends.iter().position(|b| b.addr == addr)
    }

    /// Backend `index`'s runtime override.
    pub fn admin_override(&self, index: usize) -> Override {
        self.overrides.get(index)
    }

    /// Backend `index` gets override `o` as it was saved (the state file,
    /// at start), the selector rebuilt for its weight.
    pub fn restore(&self, index: usize, o: Override) {
        self.overrides.set(index, o);
        self.reweigh();
    }

    /// Applies `change` to backend `index` and rebuilds the selector when
    /// the weights it sees changed, so every policy follows at once.
    pub fn apply(&self, index: usize, change: Change) -> Result<Override, ChangeError> {
        let _writing = self
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = self.overrides.get(index);
        let configured = self.spec.backends.get(index).map_or(0, |b| b.weight);
        let new = match change {
            Change::Drain => Override {
                state: AdminState::Drain,
                ..old
            },
            Change::Disable => Override {
                state: AdminState::Disabled,
                ..old
            },
            Change::Enable => Override {
                state: AdminState::Enabled,
                weight: u16::try_from(configured).unwrap_or(u16::MAX),
            },
            Change::Weight(0) => Override {
                state: AdminState::Drain,
                ..old
            },
            Change::Weight(w) => Override {
                state: AdminState::Enabled,
                weight: w,
            },
        };
        let weight_of = |i: usize| {
            if i == index {
                new.effective_weight()
            } else {
                self.overrides.get(i).effective_weight()
            }
        };
        if self.spec.policy == Policy::ConsistentHash {
            let total: u64 = (0..self.spec.backends.len())
                .map(|i| u64::from(weight_of(i)))
                .sum();
            if total > MAX_RING_WEIGHT {
                return Err(ChangeError::RingTooLarge(total));
            }
        }
        self.overrides.set(index, new);
        crate::live::state_file::changed();
        if old.effective_weight() != new.effective_weight() {
            let set: BTreeSet<Backend> = members(&self.spec.backends, weight_of)
                .into_iter()
                .collect();
            let rebuilt = picker(self.spec.policy, &set, &self.ctx, &self.health);
            self.picker.store(std::sync::Arc::new(rebuilt));
        }
        log::info!(
            "admin: upstream {} backend {}: {} weight {}",
            self.spec.name,
            self.spec
                .backends
                .get(index)
                .map_or("?", |b| b.addr.as_str()),
            new.state.name(),
            new.effective_weight()
        );
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_enabled_at_configured_weight() {
        let o = Overrides::new([5, 0, 1000]);
        assert_eq!(o.get(0).effective_weight(), 5);
        assert!(!o.takes_new(1), "configured weight 0 drains");
        assert!(o.serves(1));
        assert_eq!(o.get(2).weight, 1000);
    }

    #[test]
    fn drain_keeps_sticky_disable_stops_all() {
        let o = Overrides::new([3, 3]);
        o.set(
            0,
            Override {
                state: AdminState::Drain,
                weight: 3,
            },
        );
        o.set(
            1,
            Override {
                state: AdminState::Disabled,
                weight: 3,
            },
        );
        assert!(!o.takes_new(0) && o.serves(0));
        assert!(!o.takes_new(1) && !o.serves(1));
        o.set(
            1,
            Override {
                state: AdminState::Enabled,
                weight: 3,
            },
        );
        assert!(o.takes_new(1) && o.serves(1));
        assert_eq!(o.get(0).state.name(), "drain");
    }

    #[test]
    fn out_of_range_is_harmless() {
        let o = Overrides::new([1]);
        o.set(
            7,
            Override {
                state: AdminState::Disabled,
                weight: 1,
            },
        );
        assert_eq!(o.get(7).effective_weight(), 0);
    }

    #[test]
    fn a_reload_keeps_the_state_and_an_operators_weight() {
        let at = |state, weight| Override { state, weight };
        // At the configured weight: follows the new configured weight.
        assert_eq!(
            carried(at(AdminState::Drain, 5), 5, 8),
            at(AdminState::Drain, 8)
        );
        assert_eq!(
            carried(at(AdminState::Enabled, 5), 5, 8),
            at(AdminState::Enabled, 8)
        );
        // A weight an operator set stays.
        assert_eq!(
            carried(at(AdminState::Enabled, 3), 5, 8),
            at(AdminState::Enabled, 3)
        );
        assert_eq!(
            carried(at(AdminState::Disabled, 3), 5, 8),
            at(AdminState::Disabled, 3)
        );
    }
}
