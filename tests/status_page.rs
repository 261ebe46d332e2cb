//! The admin status page (`GET /`) rendered by a real browser: headless
//! Chromium loads it, its script polls `/status`, and the DOM it builds must
//! show every backend with its up/down state. Skips (with a message) when no
//! Chromium is installed: `scripts/install-deps.sh` installs it.

mod common;
use common::*;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `extra` flags; its stdout, or a
/// panic with its stderr. Killed after a minute.
fn headless(browser: &Path, profile: &Path, url: &str, extra: &[String]) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let out = reader.join().unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "chromium failed ({status:?}):\n{err}"
    );
    out
}

/// The opening tag of the table row for backend `addr`.
fn backend_row<'a>(dom: &'a str, addr: &str) -> Option<&'a str> {
    let at = dom.find(&format!("data-backend=\"{addr}\""))?;
    let start = dom[..at].rfind("<tr")?;
    let end = at + dom[at..].find('>')?;
    Some(&dom[start..=end])
}

#[test]
fn the_status_page_shows_every_backend_and_its_state_after_its_script_ran() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED: no chromium on PATH; install it with `scripts/install-deps.sh` (Debian package `chromium`)"
        );
        return;
    };
    let b = backends("page", 2);
    let dead = format!("127.0.0.1:{}", free_port());
    let proxy = Proxy::start(&format!(
        "admin: {{ listen: \"{{ADMIN}}\" }}\nlisteners:\n  web:\n    listen: \"{{HTTP}}\"\n    routes: [{{ name: site, host: \"*.page.test\", upstream: pool }}, {{ name: spare, path_prefix: /spare, upstream: spare }}]\nupstreams:\n  pool:\n    retries: 0\n    backends: [{{ addr: \"{}\", weight: 3 }}, {{ addr: \"{}\" }}, {{ addr: \"{dead}\" }}]\n    health_check: {{ type: tcp, interval: 100ms, unhealthy_threshold: 1 }}\n  spare:\n    backends: [{{ addr: \"{}\", weight: 0 }}]\n",
        b[0].addr, b[1].addr, b[0].addr
    ));
    let healthy_known = common::daemon::wait_until(Duration::from_secs(10), || {
        let s = get(proxy.admin, "a", "/status").body;
        let json: serde_json::Value = serde_json::from_str(&s).unwrap();
        json["upstreams"]["pool"]["backends"][2]["up"] == false
    });
    assert!(healthy_known, "the dead backend never went down");
    for _ in 0..4 {
        assert_eq!(proxy.get("www.page.test", "/").status, 200);
    }

    let page = get(proxy.admin, "a", "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        !page.body.contains("src=\"http") && !page.body.contains("href=\"http"),
        "no external assets"
    );

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", proxy.admin);
    let dom = headless(&browser, profile.path(), &url, &["--dump-dom".into()]);

    // Only the script writes these: the served HTML has no table at all.
    assert!(!page.body.contains("data-backend=\""));
    for (addr, state) in [
        (b[0].addr.to_string(), "up"),
        (b[1].addr.to_string(), "up"),
        (dead.clone(), "down"),
    ] {
        let row = backend_row(&dom, &addr)
            .unwrap_or_else(|| panic!("no row for backend {addr} in the rendered page:\n{dom}"));
        assert!(
            row.contains(&format!("data-state=\"{state}\"")),
            "{addr} should be {state}: {row}"
        );
    }
    assert!(dom.contains("0 (draining)"), "weight 0 shows as draining");
    assert!(
        dom.contains(&format!("pid {}", proxy.pid())),
        "process line"
    );
    assert!(dom.contains("data-route=\"site\"") && dom.contains("*.page.test"));
    assert!(dom.contains("upstream pool") && dom.contains("2/3 up"));

    // One screenshot, for a person to look at (kept where
    // SWITCHYARD_SCREENSHOT points, else dropped with the temp dir).
    let shot = profile.path().join("page.png");
    headless(
        &browser,
        &profile.path().join("shot-profile"),
        &url,
        &[format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    if let Some(keep) = std::env::var_os("SWITCHYARD_SCREENSHOT") {
        std::fs::write(keep, png).unwrap();
    }
}
