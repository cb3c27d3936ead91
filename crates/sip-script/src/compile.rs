//! The compiler: binds a loaded [`crate::Config`] to module exports and prepares everything the
//! interpreter needs before fork.

/// Compiles a `=~` pattern or a `Regex` argument.
///
/// Kamailio uses POSIX extended regexes (`regcomp(REG_EXTENDED|REG_NOSUB)`); siplab uses the
/// `regex` crate. For match/no-match (all the script asks) they agree on the ERE subset
/// configs use: alternation, groups, bracket expressions incl. `[[:digit:]]`, anchors,
/// repetition. Differences: no backreferences in either; `\d`, `\w`, `(?i)` and other Perl
/// syntax is accepted here but not by POSIX; a `\` inside brackets is an escape here but a
/// literal in POSIX; patterns are Unicode-aware here.
pub fn build_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(pattern)
}
