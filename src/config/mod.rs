//! The YAML config: parsed in two layers and checked all at once.
//!
//! ```text
//! text ──serde_yaml──▶ raw (mirrors the YAML) ──validate──▶ model (typed, servable)
//!         │ unknown keys collected (serde_ignored)      │ every semantic problem collected
//!         └──────────── each Problem gets its YAML path and line (LineIndex) ─────────┘
//! ```
//! `switchyard check` prints every [`Problem`]; `switchyard run` refuses a file
//! with any error the same way.

mod duration;
mod keys;
mod lines;
pub mod model;
mod path;
mod problem;
pub mod raw;
mod retry;
mod tls;
mod validate;

pub use duration::parse_duration;
pub use model::*;
pub use path::YamlPath;

pub use problem::{ConfigError, Problem, Problems, Severity};
pub use validate::{MAX_RING_WEIGHT, MAX_WEIGHT};

use lines::LineIndex;

/// A loaded config and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Problem>,
}

/// Reads and validates `file`.
pub fn load_file(file: &str) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_string(),
        source,
    })?;
    load_str(&text).map_err(|problems| ConfigError::Invalid {
        file: file.to_string(),
        problems,
    })
}

/// Validates config text. On failure returns every problem (errors and
/// warnings) in file order.
pub fn load_str(text: &str) -> Result<Loaded, Vec<Problem>> {
    let (config, problems) = check_str(text);
    match config {
        Some(config) => Ok(Loaded {
            config,
            warnings: problems,
        }),
        None => Err(problems),
    }
}

/// Everything `switchyard check` reports about `text`, and the config if it
/// has no errors.
pub fn check_str(text: &str) -> (Option<Config>, Vec<Problem>) {
    let mut problems = Problems::default();
    let index = match LineIndex::build(text) {
        Ok(index) => index,
        Err(e) => {
            let p = problems.error(&YamlPath::root(), format!("not valid YAML: {}", e.message));
            p.line = Some(e.line);
            p.hint("check indentation and brackets around that line");
            return (None, problems.list);
        }
    };
    let raw = parse_raw(text, &mut problems);
    let config = raw.and_then(|raw| validate::validate(raw, &mut problems));
    let mut list = problems.list;
    for p in &mut list {
        if p.line.is_none() {
            p.line = index.line_of(&p.path);
        }
    }
    list.sort_by_key(|p| (p.line.unwrap_or(0), p.severity == Severity::Warning));
    let config = config.filter(|_| !list.iter().any(|p| p.severity == Severity::Error));
    (config, list)
}

/// Text → raw shape. Unknown keys become errors (all of them); a syntax or
/// type error stops the parse and becomes one more error.
fn parse_raw(text: &str, problems: &mut Problems) -> Option<raw::RawConfig> {
    if text.trim().is_empty() {
        problems
            .error(&YamlPath::root(), "the file is empty")
            .hint("see conf/example.yaml for a starting point");
        return None;
    }
    let mut unknown = Vec::new();
    let de = serde_yaml::Deserializer::from_str(text);
    let mut collect = |p: serde_ignored::Path<'_>| unknown.push(YamlPath::from(p));
    let de = serde_ignored::Deserializer::new(de, &mut collect);
    let parsed: Result<raw::RawConfig, _> = serde_path_to_error::deserialize(de);
    for path in unknown {
        unknown_key(&path, problems);
    }
    match parsed {
        Ok(raw) => Some(raw),
        Err(e) => {
            let path = YamlPath::from(e.path());
            let inner = e.into_inner();
            let message = describe_serde_error(&inner.to_string());
            let problem = problems.error(&path, message);
            problem.line = inner.location().map(|l| l.line());
            if problem.message.contains("invalid type") {
                problem.hint("check the value's type against the reference in README.md");
            } else if problem.path.0.is_empty() {
                problem.hint(
                    "the file must be a YAML mapping with server/admin/listeners/upstreams keys",
                );
            }
            None
        }
    }
}

fn unknown_key(path: &YamlPath, problems: &mut Problems) {
    let key = path.last_key().unwrap_or("?").to_string();
    let parent = path.parent().unwrap_or_default();
    let problem = problems.error(path, format!("unknown key \"{key}\""));
    if let Some(valid) = keys::known_keys(&parent) {
        match keys::closest(&key, valid) {
            Some(near) => problem.hint(format!(
                "did you mean \"{near}\"? valid keys here: {}",
                valid.join(", ")
            )),
            None => problem.hint(format!("valid keys here: {}", valid.join(", "))),
        };
    }
}

/// serde_yaml puts the path in front of its messages and " at line L
/// column C" after them; we print both ourselves.
fn describe_serde_error(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    let msg = match msg.split_once(": ") {
        Some((prefix, rest)) if !prefix.contains(' ') => rest,
        _ => msg,
    };
    // Say what the YAML should look like, not what our Rust types are called.
    let mut out = msg
        .replace("expected u64", "expected a whole number")
        .replace("expected f64", "expected a number");
    if let Some(i) = out.find("expected struct ") {
        out.truncate(i);
        out.push_str("expected a mapping (key: value)");
    }
    out
}

#[cfg(test)]
mod tests;
