//! Dotted access paths (`request.args.get`, `Runtime.getRuntime.exec`) and
//! the patterns rules use to match them (`*` matches one segment).

/// A dotted pattern such as `request.args` or `*.execute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<String>,
}

impl PathPattern {
    /// Parses `a.b.*.c` (empty segments are dropped).
    pub fn parse(text: &str) -> Self {
        PathPattern {
            segments: text
                .split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    fn segment_matches(pattern: &str, segment: &str) -> bool {
        pattern == "*" || pattern == segment
    }

    /// Whether the pattern matches the start of `path` (sources:
    /// `request.args` matches `request.args.get`).
    pub fn matches_prefix(&self, path: &[String]) -> bool {
        !self.segments.is_empty()
            && path.len() >= self.segments.len()
            && self
                .segments
                .iter()
                .zip(path)
                .all(|(p, s)| Self::segment_matches(p, s))
    }

    /// Whether the pattern matches the end of `path` (sinks and
    /// sanitizers: `*.execute` matches `self.cursor.execute`). A pattern
    /// without `*` and with one segment (`open`) matches only a path of one
    /// segment, so `open` does not match `webbrowser.open`.
    pub fn matches_suffix(&self, path: &[String]) -> bool {
        if self.segments.is_empty() || path.len() < self.segments.len() {
            return false;
        }
        if self.segments.len() == 1 && path.len() > 1 {
            return false;
        }
        let start = path.len() - self.segments.len();
        self.segments
            .iter()
            .zip(&path[start..])
            .all(|(p, s)| Self::segment_matches(p, s))
    }
}

/// Whether any pattern matches the end of `path`.
pub(crate) fn any_suffix(patterns: &[PathPattern], path: &[String]) -> bool {
    patterns.iter().any(|p| p.matches_suffix(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Vec<String> {
        text.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn prefix_and_suffix() {
        let source = PathPattern::parse("request.args");
        assert!(source.matches_prefix(&path("request.args.get")));
        assert!(!source.matches_prefix(&path("request.form.get")));
        let sink = PathPattern::parse("*.execute");
        assert!(sink.matches_suffix(&path("self.cur.execute")));
        assert!(!sink.matches_suffix(&path("execute")));
        let open = PathPattern::parse("open");
        assert!(open.matches_suffix(&path("open")));
        assert!(!open.matches_suffix(&path("webbrowser.open")));
        let random = PathPattern::parse("random.random");
        assert!(!random.matches_suffix(&path("random.SystemRandom.random")));
    }
}
