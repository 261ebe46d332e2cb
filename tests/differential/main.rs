//! The two HTTP/1 engines held to one behaviour: switchyard's own forwarder
//! (`src/h1`) and Pingora's proxy path (`src/proxy`).
//!
//! One switchyard, two http listeners with the same routes to the same
//! scripted backend: `forwarder` (the default: plain requests take the
//! forwarder) and `pingora` (`forwarder: false`: every request goes through
//! Pingora). Each case of [`cases`] is one request shape and one scripted
//! backend answer; it is sent once through each listener, on a fresh client
//! connection, and what the client got (interim responses, status line,
//! headers, framing, body, trailers, whether the connection carries a next
//! request, what came through a tunnel, whether a paused body streamed) and
//! what the backend got (request line, headers, body) are compared. A
//! difference fails unless [`DELIBERATE`] lists it; some cases also state
//! what both engines must do ([`Expect`]), since a bug both share is no
//! difference.
//!
//! Every backend connection idle from an earlier run is closed before each
//! run, so no run depends on which idle connection a pool kept. Every read
//! has a deadline; the backend's threads end when the test does.
//!
//! The parts: [`cases`] (the case table), [`backend`] (the scripted
//! backend), [`run`] (a case's acts through one listener), [`client`]
//! (reading what the client got), [`compare`] (each aspect as text, and the
//! diff), [`wire`] (HTTP/1 text both ends read). `client`, `compare` and
//! `wire` use only std: `fuzz/fuzz_targets/engines.rs` includes them.
//!
//! `DIFFERENTIAL_ONLY=substring` runs only the cases whose name contains it;
//! `DIFFERENTIAL_VERBOSE=1` prints every aspect of every run.

#[path = "../common/mod.rs"]
mod common;

mod backend;
mod cases;
mod client;
mod compare;
mod run;
mod wire;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Instant;

use backend::Backend;
use cases::{cases, check};
use common::Proxy;
use compare::{compared, diff, Obs};
use run::run;

/// Differences we keep: (case name, aspect, why). The aspects are those
/// [`compared`] names. Known bugs are not listed here: their cases fail until
/// fixed.
/// An entry whose difference no longer shows is reported as a note.
const DELIBERATE: &[(&str, &str, &str)] = &[
    (
        "resp_backend_date",
        "headers",
        "the forwarder passes the backend's Date through (and adds one only when there is none); Pingora's path always sets its own (README, HTTP behaviour)",
    ),
    (
        "resp_chunked_trailers_te",
        "trailers",
        "the forwarder copies a chunked body as it is, trailers included; Pingora 0.9's HTTP/1 path drops response trailers (README, HTTP behaviour)",
    ),
    (
        "resp_chunked_trailers_no_te",
        "trailers",
        "as resp_chunked_trailers_te; a recipient may discard trailers it did not ask for (RFC 9110 6.5.1) (README, HTTP behaviour)",
    ),
    (
        "fault_bad_chunk_in_response",
        "body",
        "how much of a body with broken chunk framing reaches the client before the cut depends on where the break falls in a read: the forwarder drops the read holding it, Pingora's path passes the chunks decoded before it; both cut the response and close (README, HTTP behaviour)",
    ),
];

/// Two http listeners, `forwarder` and `pingora` (`forwarder: false`), with
/// the same routes to `backend`.
fn config(backend: SocketAddr) -> String {
    let routes = "[{ path_prefix: /slow, upstream: slow }, { path_prefix: /case, upstream: main }]";
    format!(
        r#"server: {{ threads: 1 }}
admin: {{ listen: "{{ADMIN}}" }}
listeners:
  forwarder:
    listen: "{{HTTP}}"
    routes: {routes}
  pingora:
    listen: "{{TCP}}"
    forwarder: false
    routes: {routes}
upstreams:
  main: {{ read_timeout: 3s, backends: [{{ addr: "{backend}" }}] }}
  slow: {{ read_timeout: 1s, backends: [{{ addr: "{backend}" }}] }}
"#
    )
}

#[test]
fn both_http1_engines_behave_alike() {
    let started = Instant::now();
    let cases = cases();
    let only = std::env::var("DIFFERENTIAL_ONLY").ok();
    let verbose = std::env::var_os("DIFFERENTIAL_VERBOSE").is_some();
    for (name, aspect, _) in DELIBERATE {
        assert!(
            cases.iter().any(|c| c.name == *name),
            "DELIBERATE names no case {name:?} ({aspect})"
        );
    }
    let backend = Backend::start(cases.iter().map(|c| c.steps.clone()).collect());
    let proxy = Proxy::start(&config(backend.addr));
    let engines = [proxy.http, proxy.tcp];

    let (mut ran, mut identical, mut deliberate_only) = (0, 0, 0);
    let mut failing = Vec::new();
    let mut report = String::new();
    for (n, case) in cases.iter().enumerate() {
        if only
            .as_ref()
            .is_some_and(|o| !case.name.contains(o.as_str()))
        {
            continue;
        }
        ran += 1;
        let obs: Vec<Obs> = engines
            .iter()
            .map(|addr| {
                backend.fresh();
                let mut o = run(*addr, n, case);
                o.backend = backend.take(n);
                o
            })
            .collect();
        let pairs = compared(&obs[0], &obs[1]);
        if verbose {
            report.push_str(&format!("----- {n} {}\n", case.name));
            for (aspect, a, b) in &pairs {
                report.push_str(&format!(
                    "  [{aspect}]\n    forwarder: {}\n    pingora:   {}\n",
                    a.replace('\n', "\n               "),
                    b.replace('\n', "\n               ")
                ));
            }
        }
        let mut problems = String::new();
        let mut kept = Vec::new();
        for (aspect, a, b) in &pairs {
            let listed = DELIBERATE
                .iter()
                .find(|(c, x, _)| *c == case.name && x == aspect);
            match (a == b, listed) {
                (true, None) => {}
                (true, Some(_)) => report.push_str(&format!(
                    "note: {} — the deliberate difference in {aspect} did not show\n",
                    case.name
                )),
                (false, Some(_)) => kept.push(*aspect),
                (false, None) => {
                    problems.push_str(&format!("    differs in {aspect}:\n{}", diff(a, b)));
                }
            }
        }
        for e in &case.expect {
            for (engine, o) in ["forwarder", "pingora"].iter().zip(&obs) {
                if let Err(why) = check(*e, o) {
                    problems.push_str(&format!("    {engine}: expected {e:?}: {why}\n"));
                }
            }
        }
        if problems.is_empty() {
            if kept.is_empty() {
                identical += 1;
                report.push_str(&format!("ok    {n:>3} {}\n", case.name));
            } else {
                deliberate_only += 1;
                report.push_str(&format!(
                    "ok    {n:>3} {} (deliberate differences: {})\n",
                    case.name,
                    kept.join(", ")
                ));
            }
        } else {
            failing.push(case.name);
            report.push_str(&format!("FAIL  {n:>3} {}\n{problems}", case.name));
        }
    }
    let summary = format!(
        "differential: {ran} cases ran in {:.1} s: {identical} identical, {deliberate_only} with deliberate differences only, {} failing{}",
        started.elapsed().as_secs_f64(),
        failing.len(),
        if failing.is_empty() {
            String::new()
        } else {
            format!(" ({})", failing.join(", "))
        }
    );
    println!("{report}");
    // Past the harness's capture: the summary shows on success too.
    let _ = writeln!(std::io::stderr(), "{summary}");
    drop(proxy);
    drop(backend);
    assert!(failing.is_empty(), "{summary}");
}
