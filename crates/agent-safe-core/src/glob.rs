//! The syntax of action patterns (policy `actions`, delegation scopes): Python `fnmatch` on
//! POSIX — case-sensitive, `*` crosses every character, `?` one character, `[...]` classes,
//! `{a,b}` alternatives, no backslash escapes. The one definition the PDP and delegation use.

use globset::{Glob, GlobBuilder};

/// The characters that make a pattern more than a plain action name.
const SPECIAL: [char; 7] = ['*', '?', '[', ']', '{', '}', ','];

/// The glob of one action pattern; an error for a malformed one (e.g. an unclosed class).
pub fn action_glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(false).backslash_escape(false).build()
}

/// Whether `pattern` has no glob syntax, so it matches exactly itself.
pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains(SPECIAL)
}

/// `Some(prefix)` when `pattern` is a literal followed by one `*` (`get-*`), which matches
/// exactly the names starting with the prefix.
pub fn literal_prefix(pattern: &str) -> Option<&str> {
    pattern.strip_suffix('*').filter(|prefix| is_literal(prefix))
}

/// Whether `pattern` matches the action name `name`; a malformed pattern matches nothing.
/// Literals and `prefix*` need no compiled matcher.
pub fn matches(pattern: &str, name: &str) -> bool {
    if is_literal(pattern) {
        return pattern == name;
    }
    if let Some(prefix) = literal_prefix(pattern) {
        return name.starts_with(prefix);
    }
    action_glob(pattern).is_ok_and(|g| g.compile_matcher().is_match(name))
}

/// The agreement table of the PDP's and delegation's tests: every pattern against every name
/// must give [`matches`]'s answer in both.
#[cfg(any(test, feature = "test-util"))]
pub mod agreement {
    /// Patterns: `*`, prefixes, suffixes, `?`, classes, negated classes, alternatives, case,
    /// a plain name, a malformed pattern, the empty pattern.
    pub const PATTERNS: &[&str] = &[
        "*",
        "get-*",
        "*-logs",
        "get-?od-logs",
        "get-[pn]od-logs",
        "get-[!p]od-logs",
        "get-{pod,node}-*",
        "Get-*",
        "get-pod-logs",
        "get-[a",
        "",
    ];
    /// Action names, some matching none of the patterns.
    pub const NAMES: &[&str] =
        &["get-pod-logs", "get-node-logs", "get-", "restart-deployment", "g"];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (pattern, name, matches): the table the PDP's and delegation's tests hold too.
    const CASES: &[(&str, &str, bool)] = &[
        ("*", "restart-deployment", true),
        ("*", "", true),
        ("get-*", "get-pod-logs", true),
        ("get-*", "get-", true),
        ("get-*", "restart-deployment", false),
        ("*-logs", "get-pod-logs", true),
        ("get-?od-logs", "get-pod-logs", true),
        ("get-?-logs", "get-pod-logs", false),
        ("get-[pn]od-logs", "get-pod-logs", true),
        ("get-[!p]od-logs", "get-pod-logs", false),
        ("get-{pod,node}-*", "get-node-status", true),
        ("get-{pod,node}-*", "get-svc-status", false),
        ("Restart-Deployment", "restart-deployment", false),
        ("a/*", "a/b/c", true),
        ("a\\*", "a\\b", true),
        ("restart-deployment", "restart-deployment", true),
        ("restart-deployment", "restart-deployments", false),
        ("get-[a", "get-[a", false),
    ];

    #[test]
    fn patterns_follow_fnmatch() {
        for &(pattern, name, expected) in CASES {
            assert_eq!(matches(pattern, name), expected, "`{pattern}` vs `{name}`");
            let compiled = action_glob(pattern).is_ok_and(|g| g.compile_matcher().is_match(name));
            assert_eq!(compiled, expected, "compiled `{pattern}` vs `{name}`");
        }
        assert!(is_literal("get-pod") && !is_literal("get-*") && !is_literal("a,b"));
        assert_eq!(literal_prefix("get-*"), Some("get-"));
        assert_eq!(literal_prefix("get-?*"), None);
        assert!(action_glob("get-[a").is_err());
    }
}
