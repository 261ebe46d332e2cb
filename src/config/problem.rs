//! Config problems: what is wrong, where (YAML path and line), and how to fix it.

use std::fmt;

use super::path::YamlPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The config cannot be served.
    Error,
    /// Servable, but probably not what the operator meant.
    Warning,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub severity: Severity,
    pub path: YamlPath,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.line {
            Some(l) => write!(f, "line {l}: {what}: {}: {}", self.path, self.message)?,
            None => write!(f, "{what}: {}: {}", self.path, self.message)?,
        }
        if let Some(h) = &self.hint {
            write!(f, "\n    hint: {h}")?;
        }
        Ok(())
    }
}

/// Collects problems while validating; every check adds to it and goes on.
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn error(&mut self, path: &YamlPath, message: impl Into<String>) -> &mut Problem {
        self.push(Severity::Error, path, message)
    }

    pub fn warning(&mut self, path: &YamlPath, message: impl Into<String>) -> &mut Problem {
        self.push(Severity::Warning, path, message)
    }

    fn push(
        &mut self,
        severity: Severity,
        path: &YamlPath,
        message: impl Into<String>,
    ) -> &mut Problem {
        self.list.push(Problem {
            severity,
            path: path.clone(),
            line: None,
            message: message.into(),
            hint: None,
        });
        let last = self.list.len() - 1;
        &mut self.list[last]
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|p| p.severity == Severity::Error)
    }
}

impl Problem {
    pub fn hint(&mut self, hint: impl Into<String>) -> &mut Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Why a config file could not be loaded: every problem found, in file order.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file} is invalid:\n{}", render(.problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
