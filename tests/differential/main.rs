//! The HTTP engines held to one behaviour: switchyard's own HTTP/1
//! forwarder (`src/h1`), Pingora's proxy path (`src/proxy`), and HTTP/2
//! clients.
//!
//! One switchyard, four http listeners with the same routes to the same
//! scripted backend: `forwarder` (the default: plain requests take the
//! forwarder), `pingora` (`forwarder: false`: every request goes through
//! Pingora), and two with `h2c: true` for HTTP/2 clients by prior knowledge,
//! `h2` (forwarder on) and `h2pingora` (`forwarder: false`). Each case of
//! [`cases`] is one request shape and one scripted backend answer; it is sent
//! once through each listener, on a fresh client connection.
//!
//! HTTP/1: what the client got through `forwarder` and through `pingora`
//! (interim responses, status line, headers, framing, body, trailers,
//! whether the connection carries a next request, what came through a
//! tunnel, whether a paused body streamed) and what the backend got (request
//! line, headers, body) are compared. A difference fails unless
//! [`DELIBERATE`] lists it; some cases also state what both engines must do
//! ([`Expect`](cases::Expect)), since a bug both share is no difference.
//!
//! HTTP/2: the same request shapes through HTTP/2 must give the backend the
//! same request and the client the same response as through HTTP/1.1. Each
//! case not in [`H2_SKIP`](cases::H2_SKIP) (shapes only the HTTP/1 wire
//! has) is sent as one HTTP/2 request ([`h2client`]) through `h2` and
//! `h2pingora`; the `h2` run is compared with the `forwarder` run and with
//! the `h2pingora` run ([`h2compare`] says what counts as equal across the
//! protocols), and both HTTP/2 runs must meet the case's expectations that
//! are not about the HTTP/1 wire. A difference fails unless
//! [`DELIBERATE_H2`] or, for now, [`KNOWN_H2_GAPS`] lists it.
//!
//! Every backend connection idle from an earlier run is closed before each
//! run, so no run depends on which idle connection a pool kept. Every read
//! has a deadline; the backend's threads end when the test does.
//!
//! The parts: [`cases`] (the case table), [`backend`] (the scripted
//! backend), [`run`] (a case's acts through one listener), [`client`]
//! (reading what the client got), [`compare`] (each aspect as text, and the
//! diff), [`wire`] (HTTP/1 text both ends read), [`h2client`] (a case as an
//! HTTP/2 request, and what came back), [`h2compare`] (HTTP/2 runs as the
//! same aspects). `client`, `compare` and `wire` use only std:
//! `fuzz/fuzz_targets/engines.rs` includes them.
//!
//! `DIFFERENTIAL_ONLY=substring` runs only the cases whose name contains it;
//! `DIFFERENTIAL_VERBOSE=1` prints every aspect of every run.

#[path = "../common/mod.rs"]
mod common;

mod backend;
mod cases;
mod client;
mod compare;
mod h2client;
mod h2compare;
mod run;
mod wire;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use backend::Backend;
use cases::{cases, check, h2_skip, Case, H2_SKIP};
use common::{free_port, Proxy};
use compare::{compared, diff, diff_between, Obs};
use h2client::{h2_request, records_by_run, run_h2, H2Obs};
use h2compare::{check_h2, h2_vs_h1, h2_vs_h2};
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

/// HTTP/2 differences we keep: (case name, pair, aspect, why). The pair is
/// `h2~forwarder` (the `h2` run against the HTTP/1 `forwarder` run) or
/// `h2~h2pingora`; the aspects are those [`h2compare`] names. An entry whose
/// difference no longer shows is reported as a note.
const DELIBERATE_H2: &[(&str, &str, &str, &str)] = &[
    // The HTTP/2 front (the `h2` listener) against HTTP/1.1 through the
    // forwarder.
    (
        "expect_continue_length",
        "h2~forwarder",
        "backend",
        "the HTTP/2 front answers 100 Continue itself and does not forward Expect, so the body streams like any other; an HTTP/1 Expect request takes Pingora's path, which forwards it (README, HTTP/2 to clients)",
    ),
    ("expect_continue_chunked", "h2~forwarder", "backend", "as expect_continue_length"),
    ("expect_continue_body_without_waiting", "h2~forwarder", "backend", "as expect_continue_length"),
    (
        "two_host_headers",
        "h2~forwarder",
        "headers",
        "Pingora's HTTP/1 parser refuses two Host fields with its own bare error page; the HTTP/2 front answers switchyard's 400 (a text body naming the status), as for every request switchyard refuses",
    ),
    ("two_host_headers", "h2~forwarder", "body", "as its headers"),
    ("connect_method", "h2~forwarder", "headers", "as two_host_headers: Pingora's own 405 page on HTTP/1, switchyard's 405 on HTTP/2"),
    ("connect_method", "h2~forwarder", "body", "as its headers"),
    // Pingora's HTTP/2 path (`h2pingora`: forwarder off, as for listeners
    // with HTTP/2 or TLS upstreams) against the HTTP/2 front.
    (
        "resp_100_then_200",
        "h2~h2pingora",
        "interim",
        "Pingora's HTTP/2 server drops every 1xx head (pingora-core v2 server, write_response_header); the HTTP/2 front passes them on, as both HTTP/1 paths do",
    ),
    ("resp_103_then_200", "h2~h2pingora", "interim", "as resp_100_then_200"),
    ("resp_two_103_then_200", "h2~h2pingora", "interim", "as resp_100_then_200"),
    ("resp_102_then_200", "h2~h2pingora", "interim", "as resp_100_then_200"),
    ("fault_1xx_then_close", "h2~h2pingora", "interim", "as resp_100_then_200"),
    ("expect_continue_length", "h2~h2pingora", "interim", "as resp_100_then_200; the HTTP/2 front sends its own 100 Continue"),
    ("expect_continue_chunked", "h2~h2pingora", "interim", "as expect_continue_length"),
    ("expect_continue_body_without_waiting", "h2~h2pingora", "interim", "as expect_continue_length"),
    ("expect_continue_length", "h2~h2pingora", "backend", "Pingora's path forwards Expect; the HTTP/2 front answers it (above)"),
    ("expect_continue_chunked", "h2~h2pingora", "backend", "as expect_continue_length"),
    ("expect_continue_body_without_waiting", "h2~h2pingora", "backend", "as expect_continue_length"),
    (
        "resp_chunked_trailers_te",
        "h2~h2pingora",
        "trailers",
        "Pingora's path drops response trailers (as on HTTP/1, DELIBERATE); the HTTP/2 front sends them as a trailing HEADERS frame, as the forwarder passes them",
    ),
    ("resp_chunked_trailers_no_te", "h2~h2pingora", "trailers", "as resp_chunked_trailers_te"),
    (
        "resp_backend_date",
        "h2~h2pingora",
        "headers",
        "Pingora's path writes its own Date (as on HTTP/1, DELIBERATE); the HTTP/2 front passes the backend's, as the forwarder does",
    ),
    (
        "missing_host",
        "h2~h2pingora",
        "headers",
        "Pingora's HTTP/2 server answers a request without :authority or Host with a bare 400 before switchyard sees it; the HTTP/2 front answers switchyard's 400, as HTTP/1 gets",
    ),
    ("missing_host", "h2~h2pingora", "body", "as its headers"),
    ("two_host_headers", "h2~h2pingora", "headers", "as missing_host"),
    ("two_host_headers", "h2~h2pingora", "body", "as missing_host"),
    ("connect_method", "h2~h2pingora", "headers", "Pingora's own 405 page; switchyard's 405 on the HTTP/2 front"),
    ("connect_method", "h2~h2pingora", "body", "as its headers"),
    (
        "fault_cut_length",
        "h2~h2pingora",
        "body",
        "by timing: Pingora resets the stream right after queueing the bytes before the cut, and a reset drops DATA the h2 crate has not written yet, so they reach the client or not; the HTTP/2 front lets them out first, as HTTP/1 gets them",
    ),
    ("fault_cut_chunked", "h2~h2pingora", "body", "by timing: as fault_cut_length"),
];

/// Differences the HTTP/2 front still has to close: none today. (case
/// name, pair or run, aspect, what differs.) The pair is as in
/// [`DELIBERATE_H2`]; `h2 must` / `h2pingora must` with the name of an
/// [`Expect`](cases::Expect) variant is an expectation that run does not
/// meet. An entry whose difference no longer shows is reported as a note
/// (fixed: remove it), unless its text starts with `by timing`: a
/// difference that shows in some runs only.
const KNOWN_H2_GAPS: &[(&str, &str, &str, &str)] = &[];

/// Four http listeners with the same routes to `backend`: `forwarder` at
/// `{HTTP}`, `pingora` (`forwarder: false`) at `{TCP}`, and with `h2c:
/// true` `h2` at `h2` and `h2pingora` (`forwarder: false`) at `h2pingora`.
fn config(backend: SocketAddr, h2: SocketAddr, h2pingora: SocketAddr) -> String {
    // Route policies, so every case also checks that each engine applies
    // them alike: header rules on every case's route, and routes that
    // answer themselves (cases `policy_*` request them by path).
    let rules =
        "request_headers: { set: { X-Edge: sy }, add: { X-Tag: edge }, remove: [X-Drop] }, \
                 response_headers: { set: { X-Resp: proxy }, remove: [X-Powered-By] }";
    let routes = format!(
        "[{{ path_prefix: /slow, upstream: slow }}, {{ path_prefix: /case, upstream: main, {rules} }}, \
         {{ path_prefix: /moved, redirect: {{ scheme: https, path: /new, status: 301 }} }}, \
         {{ path_prefix: /denied, upstream: main, deny: [127.0.0.0/8] }}, \
         {{ path_prefix: /capped, upstream: main, max_body_bytes: 10 }}]"
    );
    format!(
        r#"server: {{ threads: 1, request_id: {{ header: X-Diff-Id, trust_incoming: true }} }}
admin: {{ listen: "{{ADMIN}}" }}
listeners:
  forwarder:
    listen: "{{HTTP}}"
    routes: {routes}
  pingora:
    listen: "{{TCP}}"
    forwarder: false
    routes: {routes}
  h2:
    listen: "{h2}"
    h2c: true
    routes: {routes}
  h2pingora:
    listen: "{h2pingora}"
    h2c: true
    forwarder: false
    routes: {routes}
upstreams:
  main: {{ read_timeout: 3s, backends: [{{ addr: "{backend}" }}] }}
  slow: {{ read_timeout: 1s, backends: [{{ addr: "{backend}" }}] }}
"#
    )
}

/// Waits until `addr` accepts (`Proxy` waits for its own placeholders only).
fn wait_listening(addr: SocketAddr, proxy: &Proxy) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "switchyard did not listen on {addr}:\n{}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback address on a port [`free_port`] gives.
fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// The HTTP/2 runs of a case, by listener name.
const H2_RUNS: [&str; 2] = ["h2", "h2pingora"];

/// What the HTTP/2 part of a case came to.
enum H2Outcome {
    Skipped,
    Alike,
    /// Only listed differences; true if known gaps are among them.
    Listed(bool),
    Failing,
}

/// Runs `case` (number `n`) through both HTTP/2 listeners, compares the
/// runs with the HTTP/1 `forwarder` run `h1`, and reports to `report`.
fn h2_case(
    n: usize,
    case: &Case,
    h2: [SocketAddr; 2],
    backend: &Backend,
    h1: &Obs,
    verbose: bool,
    report: &mut String,
) -> H2Outcome {
    if let Some(why) = h2_skip(case.name) {
        if verbose {
            report.push_str(&format!("  h2 skipped: {why}\n"));
        }
        return H2Outcome::Skipped;
    }
    let req = match h2_request(case, &format!("/case/{n}")) {
        Ok(req) => req,
        Err(why) => {
            report.push_str(&format!(
                "FAIL  {n:>3} {} (h2): cannot be sent as one HTTP/2 request ({why}); list it in H2_SKIP\n",
                case.name
            ));
            return H2Outcome::Failing;
        }
    };
    // Both runs at once: each listener has its own pools, and the backend's
    // records tell the runs apart by RUN_FIELD.
    backend.fresh();
    let mut obs: Vec<H2Obs> = std::thread::scope(|s| {
        let runs: Vec<_> = h2
            .iter()
            .zip(H2_RUNS)
            .map(|(addr, run)| s.spawn(|| run_h2(*addr, run, &req, case.timing)))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let records = records_by_run(backend.take(n), &H2_RUNS);
    for (o, r) in obs.iter_mut().zip(records) {
        o.backend = r;
    }
    let mut j = Judged {
        case: case.name,
        report,
        problems: String::new(),
        kept: Vec::new(),
        gaps: Vec::new(),
        gap_values: String::new(),
    };
    for (pair, names, aspects) in [
        ("h2~forwarder", ["h2", "forwarder"], h2_vs_h1(&obs[0], h1)),
        (
            "h2~h2pingora",
            ["h2", "h2pingora"],
            h2_vs_h2(&obs[0], &obs[1]),
        ),
    ] {
        if verbose {
            j.report.push_str(&format!("  ({pair})\n"));
            for (aspect, a, b) in &aspects {
                j.report.push_str(&format!(
                    "  [{aspect}]\n    {:10} {}\n    {:10} {}\n",
                    format!("{}:", names[0]),
                    a.replace('\n', "\n               "),
                    format!("{}:", names[1]),
                    b.replace('\n', "\n               ")
                ));
            }
        }
        for (aspect, a, b) in &aspects {
            j.judge(pair, aspect, a != b, || diff_between(a, b, names));
        }
    }
    for e in &case.expect {
        for (engine, o) in H2_RUNS.iter().zip(&obs) {
            let Some(result) = check_h2(*e, o) else {
                continue;
            };
            let what = format!("{e:?}");
            let variant = what.split('(').next().unwrap_or(&what);
            let why = result.as_ref().err().cloned().unwrap_or_default();
            j.judge(&format!("{engine} must"), variant, result.is_err(), || {
                format!("      {what}: {why}\n")
            });
        }
    }
    let Judged {
        problems,
        kept,
        gaps,
        gap_values,
        report,
        ..
    } = j;
    if !problems.is_empty() {
        report.push_str(&format!(
            "FAIL  {n:>3} {} (h2)\n{problems}{gap_values}",
            case.name
        ));
        return H2Outcome::Failing;
    }
    if kept.is_empty() && gaps.is_empty() {
        report.push_str(&format!("ok    {n:>3} {} (h2)\n", case.name));
        return H2Outcome::Alike;
    }
    let mut line = format!("ok    {n:>3} {} (h2", case.name);
    if !kept.is_empty() {
        line.push_str(&format!("; deliberate differences: {}", kept.join(", ")));
    }
    if !gaps.is_empty() {
        line.push_str(&format!("; known gaps: {}", gaps.join(", ")));
    }
    report.push_str(&format!("{line})\n{gap_values}"));
    H2Outcome::Listed(!gaps.is_empty())
}

/// The HTTP/2 differences of one case, judged against [`DELIBERATE_H2`] and
/// [`KNOWN_H2_GAPS`].
struct Judged<'a> {
    case: &'a str,
    report: &'a mut String,
    /// Unlisted differences, with their values.
    problems: String,
    /// Deliberate differences and known gaps that showed: `pair aspect`.
    kept: Vec<String>,
    gaps: Vec<String>,
    /// The known gaps that showed, with their values.
    gap_values: String,
}

impl Judged<'_> {
    /// One aspect of a pair (or one expectation of a run): a listed
    /// difference is kept (deliberate) or reported with its values (known
    /// gap); an unlisted one is a problem; a listed one that did not show is
    /// a note, unless it is a gap that shows by timing only.
    fn judge(&mut self, pair: &str, aspect: &str, differs: bool, diff: impl Fn() -> String) {
        let entry = |table: &'static [(&str, &str, &str, &str)]| {
            table
                .iter()
                .find(|(c, p, a, _)| *c == self.case && *p == pair && *a == aspect)
        };
        let (deliberate, gap) = (entry(DELIBERATE_H2), entry(KNOWN_H2_GAPS));
        let by_timing = gap.is_some_and(|(.., what)| what.starts_with("by timing"));
        let text = format!("{pair} {aspect}");
        match (differs, deliberate, gap) {
            (false, None, None) => {}
            (false, None, Some(_)) if by_timing => {}
            (false, ..) => self.report.push_str(&format!(
                "note: {} — the listed HTTP/2 difference in {text} did not show{}\n",
                self.case,
                if gap.is_some() {
                    " (a known gap fixed? remove it from KNOWN_H2_GAPS)"
                } else {
                    ""
                }
            )),
            (true, Some(_), _) => self.kept.push(text),
            (true, None, Some(_)) => {
                self.gap_values
                    .push_str(&format!("    known gap in {text}:\n{}", diff()));
                self.gaps.push(text);
            }
            (true, None, None) => {
                self.problems
                    .push_str(&format!("    differs in {text}:\n{}", diff()));
            }
        }
    }
}

#[test]
fn engines_behave_alike() {
    let started = Instant::now();
    let cases = cases();
    let only = std::env::var("DIFFERENTIAL_ONLY").ok();
    let verbose = std::env::var_os("DIFFERENTIAL_VERBOSE").is_some();
    let named = |name: &str| cases.iter().any(|c| c.name == name);
    for (name, aspect, _) in DELIBERATE {
        assert!(named(name), "DELIBERATE names no case {name:?} ({aspect})");
    }
    for (table, entries) in [
        ("DELIBERATE_H2", DELIBERATE_H2),
        ("KNOWN_H2_GAPS", KNOWN_H2_GAPS),
    ] {
        for (name, pair, aspect, _) in entries {
            assert!(
                named(name),
                "{table} names no case {name:?} ({pair} {aspect})"
            );
            assert!(
                h2_skip(name).is_none(),
                "{table} names {name:?}, which H2_SKIP skips"
            );
        }
    }
    for (name, _) in H2_SKIP {
        assert!(named(name), "H2_SKIP names no case {name:?}");
    }
    let backend = Backend::start(cases.iter().map(|c| c.steps.clone()).collect());
    let (h2, h2pingora) = (loopback(), loopback());
    let proxy = Proxy::start(&config(backend.addr, h2, h2pingora));
    wait_listening(h2, &proxy);
    wait_listening(h2pingora, &proxy);
    let engines = [proxy.http, proxy.tcp];

    let (mut ran, mut identical, mut deliberate_only) = (0, 0, 0);
    // HTTP/2: skipped, alike, with listed differences only (deliberate, or
    // known gaps too).
    let (mut h2_skipped, mut h2_alike, mut h2_deliberate_only, mut h2_with_gaps) = (0, 0, 0, 0);
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
        let h1_failing = !problems.is_empty();
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
            failing.push(case.name.to_string());
            report.push_str(&format!("FAIL  {n:>3} {}\n{problems}", case.name));
        }
        match h2_case(
            n,
            case,
            [h2, h2pingora],
            &backend,
            &obs[0],
            verbose,
            &mut report,
        ) {
            H2Outcome::Skipped => h2_skipped += 1,
            H2Outcome::Alike => h2_alike += 1,
            H2Outcome::Listed(false) => h2_deliberate_only += 1,
            H2Outcome::Listed(true) => h2_with_gaps += 1,
            H2Outcome::Failing if h1_failing => {}
            H2Outcome::Failing => failing.push(format!("{} (h2)", case.name)),
        }
    }
    let h2_ran = ran - h2_skipped;
    let summary = format!(
        "differential: {ran} cases ran in {:.1} s: {identical} identical, {deliberate_only} with deliberate differences only; \
         HTTP/2: {h2_ran} of them ({h2_skipped} skipped as HTTP/1 only): {h2_alike} alike, {h2_deliberate_only} with deliberate differences only, {h2_with_gaps} with known gaps; \
         {} failing{}",
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
