//! Positions in a workflow file: [`Span`] and the line index that converts
//! between byte offsets and 1-based line:column.

use serde::Serialize;

/// A region of the source: a byte range plus the 1-based line and column
/// (in characters) of its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte (`== start` for an empty span).
    pub end: usize,
    /// 1-based line of `start`.
    pub line: usize,
    /// 1-based column of `start`, counted in characters.
    pub column: usize,
}

impl Span {
    /// The empty span at the very start of a file (line 1, column 1), for
    /// problems that have no better place.
    pub const START: Span = Span {
        start: 0,
        end: 0,
        line: 1,
        column: 1,
    };

    /// The byte range.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// Line index of one source text.
#[derive(Debug, Clone)]
pub(crate) struct SourceMap<'a> {
    source: &'a str,
    /// Byte offset where each line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        let mut line_starts = vec![0];
        for (offset, byte) in source.bytes().enumerate() {
            if byte == b'\n' {
                line_starts.push(offset + 1);
            }
        }
        SourceMap {
            source,
            line_starts,
        }
    }

    pub(crate) fn source(&self) -> &'a str {
        self.source
    }

    /// The byte offset of 1-based `line` and character `column`, clamped to
    /// the text (a position past the end of a line is its end).
    pub(crate) fn offset_of(&self, line: usize, column: usize) -> usize {
        let Some(line_start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.source.len();
        };
        let line_end = self.line_end(*line_start);
        let text = &self.source[*line_start..line_end];
        match text.char_indices().nth(column.saturating_sub(1)) {
            Some((index, _)) => line_start + index,
            None => line_end,
        }
    }

    /// Byte offset of the end of the line holding `offset` (before `\n`).
    pub(crate) fn line_end(&self, offset: usize) -> usize {
        let offset = self.clamp(offset);
        match self.source[offset..].find('\n') {
            Some(relative) => offset + relative,
            None => self.source.len(),
        }
    }

    /// Moves `offset` into the text and onto a character boundary.
    pub(crate) fn clamp(&self, offset: usize) -> usize {
        let mut offset = offset.min(self.source.len());
        while !self.source.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    /// The span of bytes `start..end` with its line and column.
    pub(crate) fn span(&self, start: usize, end: usize) -> Span {
        let start = self.clamp(start);
        let end = self.clamp(end).max(start);
        let line_index = match self.line_starts.binary_search(&start) {
            Ok(index) => index,
            Err(index) => index - 1,
        };
        let line_start = self.line_starts[line_index];
        let column = self.source[line_start..start].chars().count() + 1;
        Span {
            start,
            end,
            line: line_index + 1,
            column,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_with_multibyte_text() {
        let map = SourceMap::new("ab\nhé x\n");
        assert_eq!(map.offset_of(2, 1), 3);
        assert_eq!(map.offset_of(2, 3), 6);
        assert_eq!(map.offset_of(2, 99), 8);
        assert_eq!(map.offset_of(9, 1), 9);
        let span = map.span(6, 7);
        assert_eq!((span.line, span.column), (2, 3));
        let end = map.span(99, 99);
        assert_eq!((end.start, end.line, end.column), (9, 3, 1));
    }
}
