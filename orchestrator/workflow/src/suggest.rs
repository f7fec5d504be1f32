//! "Did you mean" suggestions and name lists for diagnostics.

/// Edit distance (Levenshtein, by characters) between two names.
pub fn edit_distance(left: &str, right: &str) -> usize {
    let right_chars: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right_chars.len()).collect();
    let mut current = vec![0; right_chars.len() + 1];
    for (i, left_char) in left.chars().enumerate() {
        current[0] = i + 1;
        for (j, right_char) in right_chars.iter().enumerate() {
            let substitution = previous[j] + usize::from(left_char != *right_char);
            let insertion = current[j] + 1;
            let deletion = previous[j + 1] + 1;
            current[j + 1] = substitution.min(insertion).min(deletion);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[right_chars.len()]
}

/// The candidate closest to `name`, if one is close enough to be a likely
/// typo (at most a third of the name's length, at least one edit).
pub fn did_you_mean<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate.eq_ignore_ascii_case(name) && *candidate != name {
            return Some(candidate);
        }
        let distance = edit_distance(name, candidate);
        if distance == 0 || distance > limit {
            continue;
        }
        if best.is_none_or(|(best_distance, _)| distance < best_distance) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// `` `a`, `b`, `c` `` or `(none)`.
pub fn name_list(names: &[&str]) -> String {
    if names.is_empty() {
        return "(none)".to_owned();
    }
    let mut text = String::new();
    for (index, name) in names.iter().enumerate() {
        if index > 0 {
            text.push_str(", ");
        }
        text.push('`');
        text.push_str(name);
        text.push('`');
    }
    text
}

/// Help text for an unknown name: `` did you mean `x`? known steps: `x`, `y` ``.
/// `kind` is the plural noun for the list (`steps`, `inputs`, `fields`).
pub fn unknown_name_help(name: &str, candidates: &[&str], kind: &str) -> String {
    let list = name_list(candidates);
    match did_you_mean(name, candidates) {
        Some(suggestion) => format!("did you mean `{suggestion}`? known {kind}: {list}"),
        None => format!("known {kind}: {list}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(edit_distance("extrct", "extract"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        let steps = ["extract", "enrich"];
        assert_eq!(did_you_mean("extrct", &steps), Some("extract"));
        assert_eq!(did_you_mean("Enrich", &steps), Some("enrich"));
        assert_eq!(did_you_mean("report", &steps), None);
        assert_eq!(
            unknown_name_help("extrct", &steps, "steps"),
            "did you mean `extract`? known steps: `extract`, `enrich`"
        );
        assert_eq!(
            unknown_name_help("x", &[], "inputs"),
            "known inputs: (none)"
        );
    }
}
