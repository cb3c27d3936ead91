//! Source positions and the map from `FileId` to file name and text.

/// Index of a loaded file in the [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FileId(pub u32);

/// A place in a source file: 1-based line and column (columns count characters), length in
/// characters. Tokens produced by a define expansion carry the span of the use site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

impl Span {
    pub fn new(file: FileId, line: u32, col: u32, len: u32) -> Self {
        Span {
            file,
            line,
            col,
            len,
        }
    }

    /// A span from the start of `self` to the end of `other` when both are on the same line,
    /// otherwise `self`.
    pub fn to(self, other: Span) -> Span {
        if self.file == other.file && self.line == other.line && other.col >= self.col {
            Span {
                len: other.col + other.len - self.col,
                ..self
            }
        } else {
            self
        }
    }

    /// The zero-length position just after this span.
    pub fn end(self) -> Span {
        Span {
            col: self.col + self.len,
            len: 0,
            ..self
        }
    }
}

/// One loaded file.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name used in diagnostics (the path as given or resolved).
    pub name: String,
    pub text: String,
}

/// All files read while loading a config (the main file and every include).
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: String, text: String) -> FileId {
        self.files.push(SourceFile { name, text });
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn name(&self, id: FileId) -> &str {
        self.get(id).map(|f| f.name.as_str()).unwrap_or("<unknown>")
    }

    /// The text of a 1-based line without its line terminator.
    pub fn line_text(&self, id: FileId, line: u32) -> Option<&str> {
        let file = self.get(id)?;
        let idx = (line as usize).checked_sub(1)?;
        file.text
            .split('\n')
            .nth(idx)
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}
