//! RE2 patterns, as Istio validates them and Envoy runs them, on the `regex` crate.
//!
//! The two dialects mostly agree; where they differ, a pattern is rewritten so it means
//! what RE2 means:
//! - `\d \w \s \b` (and negations) are ASCII-only in RE2 and Unicode-aware in `regex`;
//!   the Unicode forms are also large (`\w{30}` exceeds the size limit), so they are
//!   spelled out as ASCII classes.
//! - `\Q...\E` quotes literal text; octal escapes (`\0`, `\012`) are characters.
//! - A `{` that does not start a repetition (`x{,3}`, `a{b}`) is a literal in RE2.
//! - `\<` and `\>` are literals in RE2, word boundaries in `regex`.
//! - Inside a class, `[`, `&` and `~` are literals in RE2 but start nested classes and
//!   set operations in `regex`.

use regex::{Regex, RegexBuilder};

/// Compiled-program size allowed per pattern. Patterns are at most 1024 characters
/// (Istio's limit), so this only stops pathological repetition.
const SIZE_LIMIT: usize = 8 << 20;

const DIGIT: &str = "0-9";
const WORD: &str = "0-9A-Za-z_";
const SPACE: &str = r"\t\n\x0C\r ";

/// Compiles an RE2 `pattern`; `whole` anchors it so the entire input must match (how
/// Istio's string matches use regexes).
pub fn compile(pattern: &str, whole: bool) -> Result<Regex, String> {
    let translated = translate(pattern);
    let full = if whole { format!("^(?:{translated})$") } else { translated };
    RegexBuilder::new(&full).size_limit(SIZE_LIMIT).build().map_err(|e| last_line(&e.to_string()))
}

fn last_line(s: &str) -> String {
    s.lines().rfind(|l| !l.trim().is_empty()).unwrap_or(s).trim().trim_start_matches("error: ").to_string()
}

/// The `regex`-crate spelling of an RE2 pattern (see the module docs).
pub fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' => {
                let Some(&e) = chars.get(i) else {
                    out.push('\\');
                    break;
                };
                i += 1;
                match e {
                    'd' | 'D' | 'w' | 'W' | 's' | 'S' => perl_class(&mut out, e, in_class),
                    'b' | 'B' if !in_class => {
                        out.push_str(if e == 'b' { r"(?-u:\b)" } else { r"(?-u:\B)" });
                    }
                    'Q' => {
                        let mut lit = String::new();
                        while i < chars.len() && !(chars[i] == '\\' && chars.get(i + 1) == Some(&'E')) {
                            lit.push(chars[i]);
                            i += 1;
                        }
                        if i < chars.len() {
                            i += 2;
                        }
                        out.push_str(&regex::escape(&lit));
                    }
                    '0'..='7' if e == '0' || chars.get(i).is_some_and(|d| ('0'..='7').contains(d)) => {
                        let mut value = e.to_digit(8).unwrap_or(0);
                        let mut n = 1;
                        while n < 3 && chars.get(i).is_some_and(|d| ('0'..='7').contains(d)) {
                            value = value * 8 + chars[i].to_digit(8).unwrap_or(0);
                            i += 1;
                            n += 1;
                        }
                        out.push_str(&format!(r"\x{{{value:X}}}"));
                    }
                    '<' | '>' => out.push(e),
                    e => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` right after the opening bracket is a literal.
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
            }
            '[' if chars.get(i) == Some(&':') => {
                // A POSIX class such as `[:alpha:]`: the same in both dialects.
                let end = (i..chars.len()).find(|&j| chars[j] == ']' && chars[j - 1] == ':');
                match end {
                    Some(end) => {
                        out.extend(&chars[i - 1..=end]);
                        i = end + 1;
                    }
                    None => out.push_str(r"\["),
                }
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '{' if !in_class => match repetition(&chars[i..]) {
                Some(len) => {
                    out.push('{');
                    out.extend(&chars[i..i + len]);
                    i += len;
                }
                None => out.push_str(r"\{"),
            },
            '}' if !in_class => out.push_str(r"\}"),
            c => out.push(c),
        }
    }
    out
}

/// `\d \w \s` and their negations as ASCII classes (nested inside a class).
fn perl_class(out: &mut String, e: char, in_class: bool) {
    let set = match e.to_ascii_lowercase() {
        'd' => DIGIT,
        'w' => WORD,
        _ => SPACE,
    };
    let negated = e.is_ascii_uppercase();
    match (in_class, negated) {
        (true, false) => out.push_str(set),
        (_, true) => {
            out.push_str("[^");
            out.push_str(set);
            out.push(']');
        }
        (false, false) => {
            out.push('[');
            out.push_str(set);
            out.push(']');
        }
    }
}

/// The length of `n}`, `n,}` or `n,m}` at the start of `rest` (after a `{`), if it is a
/// repetition.
fn repetition(rest: &[char]) -> Option<usize> {
    let digits = |from: usize| rest[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let n = digits(0);
    if n == 0 {
        return None;
    }
    match rest.get(n)? {
        '}' => Some(n + 1),
        ',' => {
            let m = digits(n + 1);
            (rest.get(n + 1 + m)? == &'}').then_some(n + m + 2)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::compile;

    fn whole(p: &str, s: &str) -> bool {
        compile(p, true).unwrap_or_else(|e| panic!("{p}: {e}")).is_match(s)
    }

    #[test]
    fn perl_classes_are_ascii_and_small() {
        for p in [r"^/\w{30}$", r"[\w-]{1,64}", r"[\w.-]{1,128}", r"\w{1,100}", r"\d{1,1000}"] {
            assert!(compile(p, true).is_ok(), "{p}");
        }
        assert!(whole(r"\w+", "abc_09"));
        assert!(!whole(r"\w+", "é"), "RE2's \\w is ASCII");
        assert!(!whole(r"\d", "٣"), "RE2's \\d is ASCII");
        assert!(whole(r"[^\W\d]+", "abc"));
        assert!(!whole(r"[^\W\d]+", "a1"));
        assert!(whole(r"a\sb\Sc", "a bxc"));
        assert!(whole(r".*\bfoo\b.*", "a foo b"));
    }

    #[test]
    fn re2_literals_that_regex_reads_otherwise() {
        assert!(whole(r"\Q1+1=2\E", "1+1=2"));
        assert!(whole(r"a\Q.*", "a.*"));
        assert!(whole(r"x{,3}", "x{,3}"));
        assert!(whole(r"a{b}", "a{b}"));
        assert!(whole(r"a{2}", "aa"));
        assert!(whole(r"a{1,}", "aaa"));
        assert!(whole(r"a{1,2}", "aa"));
        assert!(whole(r"\<tag\>", "<tag>"));
        assert!(whole(r"\0", "\0"));
        assert!(whole(r"\101\x42", "AB"));
        assert!(whole(r"[a&&b]+", "a&&b"));
        assert!(whole(r"[~[]+", "~["));
        assert!(whole(r"[]a]+", "]a"));
        assert!(whole(r"[[:alpha:]]+", "abc"));
        assert!(whole(r"(?i)abc", "ABC"));
    }

    #[test]
    fn invalid_patterns_still_fail() {
        for p in [r"(", r"a\1", r"[a", r"\p{NotAClass}"] {
            assert!(compile(p, true).is_err(), "{p}");
        }
    }
}
