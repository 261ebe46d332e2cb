//! How a scenario's result is printed: an aligned plain-text table, or
//! pretty JSON with `--json`. Both depend only on the result, so the same
//! seed prints the same bytes.

use std::fmt::Write as _;

/// A plain-text table: the first column left-aligned, the others right-aligned.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table, one line per row, columns two spaces apart.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for line in std::iter::once(&self.header).chain(&self.rows) {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                let _ = if i == 0 {
                    write!(text, "{cell:<w$}", w = widths[i])
                } else {
                    write!(text, "{cell:>w$}", w = widths[i])
                };
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `x` with `decimals` digits after the point.
pub fn fixed(x: f64, decimals: usize) -> String {
    format!("{x:.decimals$}")
}

/// A latency in milliseconds, with fewer decimals as it grows.
pub fn millis(ms: f64) -> String {
    match ms {
        m if m < 10.0 => fixed(m, 2),
        m if m < 1000.0 => fixed(m, 1),
        m => fixed(m, 0),
    }
}

/// `share` (0..=1) as a percentage.
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Pretty JSON, ending with a newline.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // Our result types are plain structs of numbers and strings.
        Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(["policy", "p99"]);
        t.row(["least_conn", "3.5"]);
        t.row(["rr", "120.25"]);
        assert_eq!(
            t.render(),
            "policy         p99\nleast_conn     3.5\nrr          120.25\n"
        );
    }

    #[test]
    fn number_formats() {
        assert_eq!(millis(1.23456), "1.23");
        assert_eq!(millis(123.456), "123.5");
        assert_eq!(millis(12345.6), "12346");
        assert_eq!(percent(0.9876), "98.8%");
    }
}
