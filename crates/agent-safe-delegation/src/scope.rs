//! Scope narrowing: which action patterns and environments a delegate may be given, and the
//! coverage test "every action the child's patterns can name, the parent's can name too".

use std::cell::OnceCell;

use agent_safe_core::Environment;

/// At most this many action patterns in one delegation scope.
pub const MAX_SCOPE_ACTIONS: usize = 64;

/// At most this many characters in one action pattern of a delegation scope.
pub const MAX_PATTERN_CHARS: usize = 64;

/// The glob of one action pattern: the syntax of policy `actions` patterns, defined once in
/// core and used by the PDP too.
pub(crate) use agent_safe_core::glob::action_glob;

/// Whether `pattern` is a valid scope pattern; the reason when it is not.
pub(crate) fn check_pattern(pattern: &str) -> Result<(), String> {
    let chars = pattern.chars().count();
    if chars > MAX_PATTERN_CHARS {
        return Err(format!("{chars} characters, at most {MAX_PATTERN_CHARS} are allowed"));
    }
    if pattern.is_empty() {
        return Err("an empty pattern matches no action".to_owned());
    }
    // Scopes take `*` and `?` only: character classes and alternates add nothing a list of
    // patterns cannot say, make coverage by the parent undecidable here, and are the only
    // syntax a glob can get wrong (so the API's JSON Schema can state validity exactly).
    if pattern.contains(['[', ']', '{', '}']) {
        return Err("only `*` and `?` wildcards are allowed in a delegation scope".to_owned());
    }
    action_glob(pattern).map(|_| ()).map_err(|e| e.kind().to_string())
}

/// The patterns of `child` that `parent` does not cover, in `child`'s order.
///
/// A child pattern is covered when one parent pattern matches every action name the child
/// pattern matches. The test is sound (it never says "covered" wrongly) but not complete: a
/// child pattern that is covered only by several parent patterns together, or only through
/// character classes or `{a,b}` alternatives in a parent pattern, is reported as not covered
/// unless it is a plain action name (which is tested exactly) or equal to a parent pattern.
pub fn uncovered_actions<'a>(parent: &[String], child: &'a [String]) -> Vec<&'a str> {
    let parents: Vec<Parent<'_>> = parent.iter().map(|p| Parent::new(p)).collect();
    child
        .iter()
        .map(|c| Child::new(c))
        .filter(|c| !parents.iter().any(|p| p.covers(c)))
        .map(|c| c.text)
        .collect()
}

/// The environments of `child` that are not in `parent`, in `child`'s order.
pub fn uncovered_environments(parent: &[Environment], child: &[Environment]) -> Vec<Environment> {
    child.iter().copied().filter(|e| !parent.contains(e)).collect()
}

/// One parent pattern, prepared for coverage tests.
struct Parent<'a> {
    text: &'a str,
    /// The real matcher, compiled on first use (only plain names need it).
    matcher: OnceCell<Option<globset::GlobMatcher>>,
    /// The pattern as `*`/`?`/literal tokens, when it has no classes or alternatives.
    simple: Option<Vec<Tok>>,
}

impl<'a> Parent<'a> {
    fn new(text: &'a str) -> Self {
        let simple = tokens(text)
            .filter(|t| t.iter().all(|t| matches!(t, Tok::Lit(_) | Tok::One | Tok::Star)));
        Self { text, matcher: OnceCell::new(), simple }
    }

    fn covers(&self, child: &Child<'_>) -> bool {
        if self.text == child.text {
            return true;
        }
        if child.plain {
            // A plain name matches exactly one action: ask the real matcher.
            let matcher = self
                .matcher
                .get_or_init(|| action_glob(self.text).ok().map(|g| g.compile_matcher()));
            return matcher.as_ref().is_some_and(|m| m.is_match(child.text));
        }
        // Literals, `?` and `*` only: always a valid glob.
        match (&self.simple, &child.tokens) {
            (Some(p), Some(c)) => subsumes(p, c),
            _ => false,
        }
    }
}

/// One child pattern, prepared for coverage tests.
struct Child<'a> {
    text: &'a str,
    plain: bool,
    tokens: Option<Vec<Tok>>,
}

impl<'a> Child<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, plain: is_plain_name(text), tokens: tokens(text) }
    }
}

/// A name without any glob syntax: its pattern matches exactly itself.
fn is_plain_name(s: &str) -> bool {
    !s.is_empty() && agent_safe_core::glob::is_literal(s)
}

/// One element of a glob, as far as coverage is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// This exact character.
    Lit(char),
    /// `?`: exactly one character.
    One,
    /// `[...]`: exactly one character (which ones does not matter to a parent `?` or `*`).
    Class,
    /// `*`: any sequence.
    Star,
    /// `{a,b}`: some sequence (only a parent `*` is sure to absorb it).
    Alt,
}

/// Splits a pattern into tokens; `None` for anything this parser is not sure about (then the
/// pattern is only ever covered by an identical parent pattern).
fn tokens(pattern: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                if out.last() != Some(&Tok::Star) {
                    out.push(Tok::Star);
                }
            }
            '?' => out.push(Tok::One),
            '[' => {
                // `[!...]`/`[^...]`; a `]` right after the opening (or the negation) is literal.
                if matches!(chars.peek(), Some('!' | '^')) {
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                }
                loop {
                    match chars.next()? {
                        ']' => break,
                        '[' | '{' | '}' => return None,
                        _ => {}
                    }
                }
                out.push(Tok::Class);
            }
            '{' => {
                loop {
                    match chars.next()? {
                        '}' => break,
                        '{' | '[' | ']' => return None,
                        _ => {}
                    }
                }
                out.push(Tok::Alt);
            }
            ']' | '}' | ',' => return None,
            c => out.push(Tok::Lit(c)),
        }
    }
    Some(out)
}

/// Whether the parent tokens match every string the child tokens match. The parent is read
/// as a pattern over the child's tokens: a parent `*` absorbs any run of child tokens, a parent
/// `?` one single-character child token, a parent literal the same literal. Sound: any string
/// of the child maps, token by token, onto a match of the parent.
fn subsumes(parent: &[Tok], child: &[Tok]) -> bool {
    let (m, n) = (parent.len(), child.len());
    // row[j] = parent[i..] covers child[j..], computed from i = m down to 0.
    let mut next = vec![false; n + 1];
    next[n] = true;
    let mut row = vec![false; n + 1];
    for i in (0..m).rev() {
        for j in (0..=n).rev() {
            let here = child.get(j);
            row[j] = match parent[i] {
                Tok::Star => next[j] || (here.is_some() && row[j + 1]),
                Tok::One => {
                    matches!(here, Some(Tok::Lit(_) | Tok::One | Tok::Class)) && next[j + 1]
                }
                Tok::Lit(c) => here == Some(&Tok::Lit(c)) && next[j + 1],
                Tok::Class | Tok::Alt => false,
            };
        }
        std::mem::swap(&mut row, &mut next);
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(parent: &[&str], child: &str, covered: bool) {
        let parent: Vec<String> = parent.iter().map(|s| (*s).to_owned()).collect();
        let child = vec![child.to_owned()];
        let got = uncovered_actions(&parent, &child).is_empty();
        assert_eq!(got, covered, "{parent:?} covers {child:?}");
    }

    #[test]
    fn coverage_of_action_patterns() {
        // Plain names: exactly what the parent's matcher says.
        check(&["*"], "restart-deployment", true);
        check(&["get-*"], "get-pod-logs", true);
        check(&["get-*"], "restart-deployment", false);
        check(&["get-{pod,node}-*"], "get-pod-logs", true);
        check(&["get-[pn]od-logs"], "get-pod-logs", true);
        check(&["get-[!p]od-logs"], "get-pod-logs", false);
        check(&["restart-deployment"], "restart-deployment", true);
        check(&["Restart-Deployment"], "restart-deployment", false);
        // Patterns under patterns.
        check(&["*"], "get-*", true);
        check(&["get-*"], "get-*", true);
        check(&["get-*"], "get-pod-*", true);
        check(&["get-*"], "get-?", true);
        check(&["get-*"], "get-[ab]", true);
        check(&["get-*"], "get-{pod,node}", true);
        check(&["*-logs"], "get-*-logs", true);
        check(&["*-*"], "get-*", true);
        check(&["get-?"], "get-[ab]", true);
        check(&["get-?"], "get-*", false);
        check(&["get-pod-*"], "get-*", false);
        check(&["get-*"], "*", false);
        check(&["get-*"], "ge*", false);
        check(&["*-logs"], "get-*", false);
        check(&["get-?"], "get-{a,b}", false);
        // Identical complex patterns are covered; other complex parents are not used.
        check(&["get-[ab]*"], "get-[ab]*", true);
        check(&["get-[ab]*"], "get-a*", false);
        // Several parent patterns: any one suffices; together they do not.
        check(&["scale-*", "get-*"], "get-pod-logs", true);
        check(&["get-a*", "get-b*"], "get-*", false);
        // Nothing covers anything under an empty parent list.
        check(&[], "get-pod-logs", false);
    }

    /// Delegation coverage of a plain action name is the shared matcher's answer.
    #[test]
    fn coverage_of_names_agrees_with_the_shared_action_glob() {
        use agent_safe_core::glob::agreement::{NAMES, PATTERNS};
        for parent in PATTERNS {
            for name in NAMES {
                let expected = agent_safe_core::glob::matches(parent, name);
                check(&[parent], name, expected || parent == name);
            }
        }
    }

    #[test]
    fn pattern_validation() {
        assert_eq!(check_pattern("get-*"), Ok(()));
        assert_eq!(check_pattern(""), Err("an empty pattern matches no action".to_owned()));
        for pattern in ["get-[a", "get-[ab]", "get-{pod,node}", "a]", "a}"] {
            assert_eq!(
                check_pattern(pattern),
                Err("only `*` and `?` wildcards are allowed in a delegation scope".to_owned()),
                "{pattern}"
            );
        }
        assert_eq!(check_pattern("get-?od-*"), Ok(()));
        let long = "a".repeat(MAX_PATTERN_CHARS + 1);
        assert_eq!(check_pattern(&long), Err("65 characters, at most 64 are allowed".to_owned()));
    }

    #[test]
    fn environments_are_set_inclusion() {
        use Environment::*;
        assert_eq!(uncovered_environments(&[Dev, Staging], &[Staging]), vec![]);
        assert_eq!(uncovered_environments(&[Dev, Staging], &[Prod, Dev]), vec![Prod]);
        assert_eq!(uncovered_environments(&[], &[Dev]), vec![Dev]);
        assert_eq!(uncovered_environments(&[Dev], &[]), vec![]);
    }

    /// Every string over `alphabet` with at most `max` items.
    fn all_strings(alphabet: &[&str], max: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = all.clone();
        for _ in 0..max {
            last =
                last.iter().flat_map(|s| alphabet.iter().map(move |a| format!("{s}{a}"))).collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    /// Soundness, exhaustively over small patterns: whenever a child pattern is reported
    /// covered, every name it matches is matched by the parent (checked with the real matcher).
    #[test]
    fn covered_means_every_match_is_allowed() {
        let patterns = all_strings(&["a", "-", "*", "?", "[ab]", "{a,bc}"], 3);
        let names = all_strings(&["a", "b", "c", "-"], 4);
        let matchers: Vec<_> =
            patterns.iter().map(|p| action_glob(p).unwrap().compile_matcher()).collect();
        let mut covered_pairs = 0;
        for (parent, p) in patterns.iter().zip(&matchers) {
            let prepared = Parent::new(parent);
            for (child, c) in patterns.iter().zip(&matchers) {
                if !prepared.covers(&Child::new(child)) {
                    continue;
                }
                covered_pairs += 1;
                for name in names.iter().filter(|n| c.is_match(n)) {
                    assert!(p.is_match(name), "`{parent}` covers `{child}` but not `{name}`");
                }
            }
        }
        // The test is not vacuous: many pairs are covered (identical ones among them).
        assert!(covered_pairs > 2 * patterns.len(), "{covered_pairs}");
    }
}
