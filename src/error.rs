//! Errors that point at a place in a source file, rendered like a compiler
//! diagnostic: `file:line:col: message`, then the offending line and a caret.
//!
//! Use [`SourceError`] for anything wrong in the operator's input (inventory,
//! playbook, template, variables). Remote failures carry host and command
//! instead and live in the executor.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position in a source file. Lines are 1-based, columns 1-based.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub file: Option<Arc<PathBuf>>,
    pub line: usize,
    pub col: usize,
}

impl Span {
    pub fn new(file: &Arc<PathBuf>, line: usize, col: usize) -> Span {
        Span { file: Some(file.clone()), line, col }
    }
    /// A span that only names a file (line and column unknown).
    pub fn file(path: &Path) -> Span {
        Span { file: Some(Arc::new(path.to_path_buf())), line: 0, col: 0 }
    }
    /// A span `lines` lines further down (for errors inside a block scalar).
    pub fn offset_lines(&self, lines: usize) -> Span {
        Span { file: self.file.clone(), line: self.line + lines, col: self.col }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<input>".into());
        if self.line == 0 {
            write!(f, "{file}")
        } else {
            write!(f, "{file}:{}:{}", self.line, self.col)
        }
    }
}

/// An error in the operator's input, with the place it was found.
#[derive(Debug, Clone)]
pub struct SourceError {
    pub span: Span,
    pub message: String,
    /// An optional hint: what was expected, or how to fix it.
    pub help: Option<String>,
}

impl SourceError {
    pub fn new(span: Span, message: impl Into<String>) -> SourceError {
        SourceError { span, message: message.into(), help: None }
    }
    pub fn help(mut self, help: impl Into<String>) -> SourceError {
        self.help = Some(help.into());
        self
    }
    fn snippet(&self) -> Option<String> {
        let path = self.span.file.as_ref()?;
        if self.span.line == 0 {
            return None;
        }
        let text = std::fs::read_to_string(path.as_ref()).ok()?;
        let line = text.lines().nth(self.span.line - 1)?;
        let num = self.span.line.to_string();
        let pad = " ".repeat(num.len());
        let caret = " ".repeat(self.span.col.saturating_sub(1));
        Some(format!("{pad} |\n{num} | {line}\n{pad} | {caret}^"))
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.span, self.message)?;
        if let Some(snippet) = self.snippet() {
            write!(f, "\n{snippet}")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceError {}

/// Shorthand for results that fail with a located input error.
pub type SResult<T> = Result<T, SourceError>;
