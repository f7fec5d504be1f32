//! "Did you mean" suggestions and name lists for diagnostics.

/// Edit distance between two names, by characters: insertions, deletions,
/// substitutions and swaps of two neighbours (`stesp` → `steps` is 1)
/// each count 1 (optimal string alignment distance).
pub fn edit_distance(left: &str, right: &str) -> usize {
    let left_chars: Vec<char> = left.chars().collect();
    let right_chars: Vec<char> = right.chars().collect();
    let width = right_chars.len() + 1;
    // Rows i-2, i-1 and i of the distance table.
    let mut before: Vec<usize> = vec![0; width];
    let mut previous: Vec<usize> = (0..width).collect();
    let mut current = vec![0; width];
    for i in 1..=left_chars.len() {
        current[0] = i;
        for j in 1..width {
            let cost = usize::from(left_chars[i - 1] != right_chars[j - 1]);
            let mut best = (previous[j - 1] + cost)
                .min(current[j - 1] + 1)
                .min(previous[j] + 1);
            if i > 1
                && j > 1
                && left_chars[i - 1] == right_chars[j - 2]
                && left_chars[i - 2] == right_chars[j - 1]
            {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
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
        assert_eq!(edit_distance("stesp", "steps"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(did_you_mean("stesp", &["name", "steps"]), Some("steps"));
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
