//! Diagnostics: `file:line:col: message`, the source line and a caret.

use crate::span::{SourceMap, Span};
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Span,
    pub message: String,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
        }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            span,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: [warning: ]message`, without the source excerpt.
    pub fn headline(&self, sources: &SourceMap) -> String {
        let prefix = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        format!(
            "{}:{}:{}: {}{}",
            sources.name(self.span.file),
            self.span.line,
            self.span.col,
            prefix,
            self.message
        )
    }

    /// The headline, then the source line and a caret under the column. Tabs before the column
    /// are repeated in the caret line so the caret lines up in a terminal.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = self.headline(sources);
        out.push('\n');
        if let Some(line) = sources.line_text(self.span.file, self.span.line) {
            let _ = writeln!(out, "{line}");
            let pad: String = line
                .chars()
                .take(self.span.col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(out, "{pad}^");
        }
        out
    }
}

/// Renders every diagnostic in order.
pub fn render_all(diags: &[Diagnostic], sources: &SourceMap) -> String {
    diags.iter().map(|d| d.render(sources)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_points_caret_at_column() {
        let mut map = SourceMap::new();
        let f = map.add("etc/broken.cfg".into(), "debug=2\n    chidren=4\n".into());
        let d = Diagnostic::error(Span::new(f, 2, 5, 7), "unknown core parameter `chidren`");
        assert_eq!(
            d.render(&map),
            "etc/broken.cfg:2:5: unknown core parameter `chidren`\n    chidren=4\n    ^\n"
        );
    }

    #[test]
    fn render_keeps_tabs_in_caret_line() {
        let mut map = SourceMap::new();
        let f = map.add("a.cfg".into(), "\tx y\n".into());
        let d = Diagnostic::warning(Span::new(f, 1, 4, 1), "w");
        assert_eq!(d.render(&map), "a.cfg:1:4: warning: w\n\tx y\n\t  ^\n");
    }
}
