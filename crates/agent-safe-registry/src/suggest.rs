//! "Did you mean …?" suggestions by edit distance, for misspelled keys and names.

/// The candidate closest to `input` by optimal-string-alignment distance (an adjacent
/// transposition counts as one edit), if it is close enough to be a plausible typo.
///
/// Ties go to the earliest candidate. The comparison is case-sensitive but a case-only
/// difference costs one edit per character.
///
/// ```
/// use agent_safe_registry::suggest::did_you_mean;
/// assert_eq!(did_you_mean("paramters", ["name", "parameters"]), Some("parameters"));
/// assert_eq!(did_you_mean("nmae", ["name", "parameters"]), Some("name"));
/// assert_eq!(did_you_mean("zzz", ["name", "parameters"]), None);
/// ```
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = max_edits(input.chars().count());
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == input {
            continue;
        }
        let d = distance(input, candidate);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// How many edits a name of `len` characters may be away from a suggestion.
fn max_edits(len: usize) -> usize {
    match len {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    }
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), by chars.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rolling rows: i-2, i-1, i.
    let width = b.len() + 1;
    let mut prev2 = vec![0usize; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur = vec![0usize; width];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, candidates: &[&str], expected: Option<&str>) {
        assert_eq!(did_you_mean(input, candidates.iter().copied()), expected, "{input}");
    }

    #[test]
    fn suggests_close_names_only() {
        let fields = ["name", "version", "description", "parameters", "risk_class", "target_types"];
        check("action", &["actions", "targets"], Some("actions"));
        check("nmae", &fields, Some("name"));
        check("Name", &fields, Some("name"));
        check("target_type", &fields, Some("target_types"));
        check("decsription", &fields, Some("description"));
        check("verison", &fields, Some("version"));
        check("risk", &fields, None);
        check("min_value", &["name", "type", "required", "constraints"], None);
        check("name", &fields, None); // an exact match is not a suggestion
        check("", &fields, None);
        check("x", &["y"], Some("y"));
        check("tag", &["tags", "tab"], Some("tags")); // tie → first candidate
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("", "ab"), 2);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("ünï", "uni"), 2);
    }
}
