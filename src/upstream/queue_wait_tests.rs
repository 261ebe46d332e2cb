//! `max_conns` in [`Upstream::select_or_full`] and the queue in
//! [`Upstream::wait_for`], on a real upstream built from YAML.

use std::sync::Arc;
use std::time::Duration;

use super::{NoRoom, Unavailable, Upstream};

fn upstream(extra: &str) -> Arc<Upstream> {
    let yaml = format!(
        "listeners:\n  web:\n    listen: 127.0.0.1:8080\n    routes: [{{ upstream: u }}]\nupstreams:\n  u:\n    backends: [{{ addr: 127.0.0.1:9001, max_conns: 1 }}, {{ addr: 127.0.0.1:9002, max_conns: 1 }}]\n{extra}"
    );
    let config = crate::config::load_str(&yaml).unwrap().config;
    Upstream::build(Arc::clone(&config.upstreams["u"]))
}

#[test]
fn full_backends_are_skipped_and_told_apart_from_unusable_ones() {
    let u = upstream("");
    let a = u.select_or_full(b"", &[]).unwrap();
    let b = u.select_or_full(b"", &[]).unwrap();
    assert_ne!(a.index, b.index, "the full backend was skipped");
    assert_eq!(u.select_or_full(b"", &[]).unwrap_err(), NoRoom::Full);
    assert_eq!(u.select_or_full(b"", &[0, 1]).unwrap_err(), NoRoom::None);
    assert!(
        u.select_pinned(a.index, &[]).is_none(),
        "a full sticky backend"
    );
    drop(a);
    assert!(u.select_or_full(b"", &[]).is_ok());
}

#[tokio::test]
async fn without_a_queue_a_full_upstream_is_overloaded_at_once() {
    let u = upstream("");
    let _held = (u.select(b"", &[]).unwrap(), u.select(b"", &[]).unwrap());
    let got = u.select_waiting(b"", &[]).await;
    assert_eq!(got.unwrap_err(), Unavailable::Overloaded);
}

#[tokio::test]
async fn a_waiter_gets_the_slot_that_frees_and_a_late_one_times_out() {
    let u = upstream("    queue: { max: 1, timeout: 300ms }\n");
    let a = u.select(b"", &[]).unwrap();
    let b = u.select(b"", &[]).unwrap();
    let freed = a.index;
    let waiter = tokio::spawn({
        let u = Arc::clone(&u);
        async move { u.select_waiting(b"", &[]).await.map(|a| a.index) }
    });
    tokio::time::timeout(Duration::from_secs(5), async {
        while u.queue().unwrap().depth() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the request queued");
    // One waits already: the queue (max 1) is full.
    assert_eq!(
        u.select_waiting(b"", &[]).await.unwrap_err(),
        Unavailable::Overloaded
    );
    drop(a);
    let got = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken when the slot freed")
        .unwrap();
    assert_eq!(got, Ok(freed));
    // Both full again (b and the waiter's attempt, dropped above: only b).
    let c = u.select(b"", &[]).unwrap();
    let late = u.select_waiting(b"", &[]).await;
    assert_eq!(late.unwrap_err(), Unavailable::Overloaded, "timed out");
    assert_eq!(u.queue().unwrap().timeouts(), 2);
    assert_eq!(u.queue().unwrap().depth(), 0);
    drop((b, c));
}
