//! Settings that parse and validate but that this version does not act on
//! yet. Each is a warning, never a silent no-op; a line goes away when its
//! feature lands.

use super::model::*;
use super::path::YamlPath;
use super::problem::Problems;

pub fn warn(c: &Config, p: &mut Problems) {
    let root = YamlPath::root();
    let not_yet = "is accepted but not enforced yet by this version";
    for l in &c.listeners {
        let lp = root.key("listeners").key(&l.name);
        match &l.kind {
            ListenerKind::Tcp { .. } => {}
            ListenerKind::Http { routes } => {
                for (i, r) in routes.iter().enumerate() {
                    let rp = lp.key("routes").index(i);
                    if let Some(RateLimit {
                        store: RateStore::Redis(_),
                        ..
                    }) = &r.rate_limit
                    {
                        p.warning(
                            &rp.key("rate_limit").key("store"),
                            format!("a redis store {not_yet}; each instance counts in memory (store: local)"),
                        );
                    }
                }
            }
        }
    }
}
