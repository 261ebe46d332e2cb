//! Where each YAML node starts: a map from [`YamlPath`] to its 1-based line.
//!
//! serde gives us paths but not positions, so the document is walked once
//! more with a marking parser and every key and sequence item is indexed.
//! A problem's line is that of its path, or of its nearest indexed ancestor
//! (a missing key is reported at the mapping that lacks it).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::path::{Seg, YamlPath};

/// The text is not YAML: what the scanner said, and where.
#[derive(Debug)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct LineIndex {
    lines: HashMap<YamlPath, usize>,
}

impl LineIndex {
    /// Indexes `text`, or says where and why it is not YAML.
    pub fn build(text: &str) -> Result<Self, SyntaxError> {
        let mut b = Builder::default();
        let mut parser = Parser::new_from_str(text);
        parser.load(&mut b, true).map_err(|e| SyntaxError {
            line: e.marker().line(),
            message: e.info().to_string(),
        })?;
        Ok(Self { lines: b.lines })
    }

    /// The line of `path`, falling back to its closest ancestor that has one.
    pub fn line_of(&self, path: &YamlPath) -> Option<usize> {
        let mut p = Some(path.clone());
        while let Some(cur) = p {
            if let Some(l) = self.lines.get(&cur) {
                return Some(*l);
            }
            p = cur.parent();
        }
        None
    }
}

enum Frame {
    /// A mapping; `key` holds the key just read while its value is pending.
    Map {
        key: Option<String>,
    },
    Seq {
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    lines: HashMap<YamlPath, usize>,
    path: Vec<Seg>,
    stack: Vec<Frame>,
}

impl Builder {
    /// Called when a node (scalar or collection) starts at `line`. Returns
    /// whether this node is a mapping key (which has no path of its own).
    fn enter_node(&mut self, line: usize) -> bool {
        match self.stack.last_mut() {
            Some(Frame::Map { key: None }) => true,
            Some(Frame::Map { key: Some(_) }) => false,
            Some(Frame::Seq { next }) => {
                let i = *next;
                *next += 1;
                self.path.push(Seg::Index(i));
                self.lines
                    .entry(YamlPath(self.path.clone()))
                    .or_insert(line);
                false
            }
            None => false,
        }
    }

    /// Called when a value node ends: pops the path segment it pushed.
    fn leave_value(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key: key @ Some(_) }) => {
                *key = None;
                self.path.pop();
            }
            Some(Frame::Seq { .. }) => {
                self.path.pop();
            }
            _ => {}
        }
    }

    /// A scalar (or alias) is either a mapping key or a complete value.
    fn scalar(&mut self, value: String, line: usize) {
        if self.enter_node(line) {
            // A mapping key: remember it; its value comes next.
            self.path.push(Seg::Key(value.clone()));
            self.lines
                .entry(YamlPath(self.path.clone()))
                .or_insert(line);
            if let Some(Frame::Map { key }) = self.stack.last_mut() {
                *key = Some(value);
            }
        } else {
            self.leave_value();
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(value, ..) => self.scalar(value, line),
            Event::Alias(_) => self.scalar("*alias".into(), line),
            Event::MappingStart(..) => {
                self.enter_node(line);
                self.stack.push(Frame::Map { key: None });
            }
            Event::SequenceStart(..) => {
                self.enter_node(line);
                self.stack.push(Frame::Seq { next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.leave_value();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_keys_and_items() {
        let text = "a: 1\nupstreams:\n  api:\n    backends:\n      - addr: x\n      - addr: y\n        weight: 2\n";
        let idx = LineIndex::build(text).unwrap();
        assert_eq!(idx.line_of(&YamlPath::parse("a")), Some(1));
        assert_eq!(idx.line_of(&YamlPath::parse("upstreams.api")), Some(3));
        assert_eq!(
            idx.line_of(&YamlPath::parse("upstreams.api.backends[0]")),
            Some(5)
        );
        assert_eq!(
            idx.line_of(&YamlPath::parse("upstreams.api.backends[1].weight")),
            Some(7)
        );
        // Missing keys fall back to the closest ancestor.
        assert_eq!(
            idx.line_of(&YamlPath::parse("upstreams.api.backends[1].nope")),
            Some(6)
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = LineIndex::build("a: 1\nb: [1, 2\nc: }\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
    }

    #[test]
    fn flow_style_is_indexed() {
        let idx = LineIndex::build("l:\n  tls: { cert: a, key: b }\n  r: [x, {y: 1}]\n").unwrap();
        assert_eq!(idx.line_of(&YamlPath::parse("l.tls.key")), Some(2));
        assert_eq!(idx.line_of(&YamlPath::parse("l.r[1].y")), Some(3));
    }
}
