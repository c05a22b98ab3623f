//! Fuzz delegation-scope coverage: whenever child patterns are reported covered by parent
//! patterns, every probe name a child pattern matches must be matched by some parent pattern.
//! Input: lines; `--` separates parent patterns, child patterns and probe names.
#![no_main]

use agent_safe_delegation::scope::uncovered_actions;
use globset::GlobBuilder;

fn glob(p: &str) -> Option<globset::GlobMatcher> {
    // The PDP's `action_glob` settings.
    GlobBuilder::new(p).literal_separator(false).backslash_escape(false).build().ok().map(|g| g.compile_matcher())
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut sections = text.split("\n--\n");
    let lines = |s: Option<&str>| -> Vec<String> {
        s.map(|s| s.lines().take(16).map(|l| l.chars().take(64).collect()).collect()).unwrap_or_default()
    };
    let (parents, children, names) = (lines(sections.next()), lines(sections.next()), lines(sections.next()));
    // Only valid patterns reach the coverage test in practice (they are checked first).
    if parents.iter().chain(&children).any(|p| glob(p).is_none()) {
        return;
    }
    let uncovered = uncovered_actions(&parents, &children);
    let parent_globs: Vec<_> = parents.iter().filter_map(|p| glob(p)).collect();
    for child in children.iter().filter(|c| !uncovered.contains(&c.as_str())) {
        let Some(c) = glob(child) else { continue };
        for name in names.iter().filter(|n| c.is_match(n.as_str())) {
            assert!(
                parent_globs.iter().any(|p| p.is_match(name.as_str())),
                "{parents:?} cover {child:?} but not {name:?}"
            );
        }
    }
});
