//! Helpers for the reload tests: rewriting a running proxy's config file
//! with the same placeholders, the three reload triggers, `/status`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use super::{get, send, Proxy, Response, BIN};

pub const TOKEN: &str = "reload-test-token";

/// A token file in its own directory (made before the proxy starts).
pub fn token_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    (dir, file)
}

/// The config file `p` runs from.
pub fn conf_path(p: &Proxy) -> PathBuf {
    p.dir.path().join("switchyard.yaml")
}

/// Rewrites `p`'s config file: `{HTTP}`, `{ADMIN}`, `{TCP}`, `{DIR}` stand
/// for what they stood for at start.
pub fn rewrite(p: &Proxy, text: &str) {
    let text = text
        .replace("{HTTP}", &p.http.to_string())
        .replace("{ADMIN}", &p.admin.to_string())
        .replace("{TCP}", &p.tcp.to_string())
        .replace("{DIR}", &p.dir.path().to_string_lossy());
    std::fs::write(conf_path(p), text).unwrap();
}

/// `POST /reload` with `token`.
pub fn post_reload(p: &Proxy, token: Option<&str>) -> Response {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let raw = format!(
        "POST /reload HTTP/1.1\r\nHost: admin\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    send(p.admin, raw.as_bytes())
}

/// `switchyard reload -c <p's file>`: (exit code, stdout + stderr).
pub fn cli_reload(p: &Proxy) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["reload", "-c"])
        .arg(conf_path(p))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

pub fn status(p: &Proxy) -> serde_json::Value {
    serde_json::from_str(&get(p.admin, "admin", "/status").body).unwrap()
}

pub fn generation(p: &Proxy) -> u64 {
    status(p)["config_generation"].as_u64().unwrap()
}

/// Backend `addr` of upstream `u` in `/status`.
pub fn backend_status(p: &Proxy, u: &str, addr: &str) -> serde_json::Value {
    let s = status(p);
    s["upstreams"][u]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["addr"] == addr)
        .cloned()
        .unwrap_or_else(|| panic!("no backend {addr} in {s}"))
}
