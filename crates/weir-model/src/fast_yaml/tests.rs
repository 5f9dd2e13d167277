//! The fast path must build exactly the complete parser's tree, or give up: compared on
//! hand-written cases, on every example in the repository, and on generated and
//! mutated documents.

use super::parse;
use crate::node::{parse_full, split_documents};

/// Compares both parsers on one document; true when the fast path took it.
fn same(text: &str) -> bool {
    let full = parse_full(text, 3);
    match parse(text, 3) {
        Some(fast) => {
            assert_eq!(Ok(&fast), full.as_ref(), "the fast path differs on:\n{text}");
            true
        }
        None => false,
    }
}

fn same_stream(text: &str) -> usize {
    split_documents(text).iter().filter(|c| same(c.text)).count()
}

#[test]
fn common_configuration_takes_the_fast_path() {
    let cases = [
        "a: 1\nb:\n  c: [x, y]\nd:\ne: {k: v, \"q\": 's'}\nf:\n- x\n- y: 1\n  z:\n- - n\n",
        "---\n# c\nk1:   v a l   # comment\nk2: \"x\" # c\nk3: http://x:80/y\n\"k 4\": {}\nk5: []\n",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\n  namespace: b\nspec:\n  hosts:\n  - reviews\n  http:\n  - match:\n    - headers:\n        end-user:\n          exact: jason\n    route:\n    - destination:\n        host: reviews\n        subset: v2\n      weight: 90\n",
        "ports: [{number: 80, name: http, protocol: HTTP}]\nendpoints: [{address: 127.0.0.1, ports: {http: 9080}, labels: {version: v1}}]\n",
        "{\n  \"kind\": \"List\",\n  \"items\": [\n    {\"a\": 1, \"b\": [true, null, -2.5, \"x\\ny\\u00e9\"]}\n  ]\n}\n",
        "a:\n  - x\n  -   y\n  - z: 1\n    w: 2\nb: 'it''s'\nc: -1\nd: 0x1F\ne: ~\nf: \"\"\n",
        "list:\n-   a\n-   b\nnext: 1\n",
        "a: [1,\n  2]\nb: {x: 1,\n    y: 2}\n",
        "# only\n\n# comments first\nx: y\n",
        "  indented: root\n  second: 2\n",
        "- root\n- list\n",
        "a:\n  b:\n    c:\n      d: deep\n  e: back\n",
        "k: v # trailing\n# between\n\nk2: v2\n",
    ];
    for c in cases {
        assert!(same(c), "the fast path gave up on:\n{c}");
    }
}

#[test]
fn what_it_does_not_take_goes_to_the_complete_parser() {
    let cases = [
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: |\n  text\n",
        "a: >\n  folded\n",
        "a: multi\n  line\n",
        "? complex\n: key\n",
        "%YAML 1.2\n---\na: 1\n",
        "a:\tb\n",
        "a: caf\u{e9}\n",
        "a: 1\na: 2\n",
        "a: b: c\n",
        "a: - x\n",
        "a: \"open\n",
        "a: 1\n- x\n",
        "a: 1\n  b: 2\n",
        "k6: {a: , b}\n",
        "- \n- x\n",
        "key:value\nother: 1\n",
        "\"a\":b\n",
        "a: \"x\"#c\n",
    ];
    for c in cases {
        assert!(!same(c), "the fast path took:\n{c}");
    }
}

#[test]
fn every_example_in_the_repository_parses_the_same() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    let mut dirs = vec![root.join("examples"), root.join("crates")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with("target") {
                dirs.push(p);
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml" | "json")) {
                files.push(p);
            }
        }
    }
    assert!(!files.is_empty());
    let mut fast = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        fast += same_stream(&text);
    }
    assert!(fast > 0, "no example took the fast path");
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }

    fn chance(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    fn scalar(&mut self) -> String {
        let s = self.pick(&[
            "x",
            "v1",
            "80",
            "-3",
            "1.5",
            "true",
            "null",
            "~",
            "\"q\"",
            "'s'",
            "'it''s'",
            "\"a\\\"b\"",
            "a b",
            "http://h:1/p",
            "a#b",
            "-x",
            "?y",
            ":z",
            "\"\"",
            "''",
            "\"\\u0041\"",
            "1e3",
            "0o17",
            "FALSE",
        ]);
        s.to_string()
    }

    fn key(&mut self) -> String {
        self.pick(&["a", "name", "host", "\"quoted key\"", "'k'", "x-y", "b.c", "port", "k 2"]).to_string()
    }

    fn flow(&mut self, depth: usize, multiline: bool) -> String {
        let nl = |g: &mut Gen| if multiline && g.chance(3) { "\n      " } else { " " };
        if depth > 2 || self.chance(3) {
            return self.scalar();
        }
        let n = self.next() % 4;
        if self.chance(2) {
            let items: Vec<String> = (0..n).map(|_| self.flow(depth + 1, multiline)).collect();
            let sep = format!(",{}", nl(self));
            format!("[{}]", items.join(&sep))
        } else {
            let mut items = Vec::new();
            for i in 0..n {
                items.push(format!("k{i}: {}", self.flow(depth + 1, multiline)));
            }
            let sep = format!(",{}", nl(self));
            format!("{{{}}}", items.join(&sep))
        }
    }

    /// A block node at `indent` (for a mapping value: on the lines after its key).
    fn block(&mut self, out: &mut String, indent: usize, depth: usize) {
        let step = 1 + (self.next() % 3) as usize;
        let pad = " ".repeat(indent);
        let n = 1 + self.next() % 3;
        let seq = self.chance(2);
        for _ in 0..n {
            if self.chance(6) {
                out.push_str(&format!("{pad}# comment\n"));
            }
            if self.chance(8) {
                out.push('\n');
            }
            if seq {
                out.push_str(&format!("{pad}-{}", " ".repeat(1 + (self.next() % 2) as usize)));
                if depth < 3 && self.chance(2) {
                    // A compact mapping in the entry.
                    let inner = out.len() - out.rfind('\n').map_or(0, |i| i + 1);
                    let mut first = true;
                    for _ in 0..1 + self.next() % 2 {
                        let p = if first { String::new() } else { " ".repeat(inner) };
                        first = false;
                        out.push_str(&format!("{p}{}: {}\n", self.key(), self.scalar()));
                    }
                } else {
                    out.push_str(&format!("{}\n", self.scalar()));
                }
            } else {
                let key = self.key();
                match self.next() % 5 {
                    0 if depth < 3 => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        let indentless = self.chance(3);
                        if indentless {
                            let m = 1 + self.next() % 2;
                            for _ in 0..m {
                                out.push_str(&format!("{pad}- {}\n", self.scalar()));
                            }
                        } else {
                            self.block(out, indent + step, depth + 1);
                        }
                    }
                    1 => {
                        let multiline = self.chance(3);
                        let f = self.flow(0, multiline);
                        out.push_str(&format!("{pad}{key}: {f}\n"));
                    }
                    2 => out.push_str(&format!("{pad}{key}:{}\n", if self.chance(2) { "" } else { "  # c" })),
                    _ => {
                        let v = self.scalar();
                        let c = if self.chance(4) { " # c" } else { "" };
                        out.push_str(&format!("{pad}{key}: {v}{c}\n"));
                    }
                }
            }
        }
    }

    fn mutate(&mut self, text: &str) -> String {
        let mut b = text.as_bytes().to_vec();
        let at = (self.next() % b.len().max(1) as u64) as usize;
        let ch = *b":- #\n'\"[]{},x ".get((self.next() % 15) as usize).unwrap_or(&b' ');
        match self.next() % 3 {
            0 if at < b.len() => {
                b.remove(at);
            }
            1 => b.insert(at.min(b.len()), ch),
            _ if at < b.len() => b[at] = ch,
            _ => {}
        }
        String::from_utf8(b).unwrap_or_default()
    }
}

#[test]
fn generated_and_mutated_documents_parse_the_same_or_fall_back() {
    // WEIR_FUZZ_ROUNDS=N runs N times as many documents (from other seeds).
    let rounds: u64 = std::env::var("WEIR_FUZZ_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    for round in 0..rounds {
        generated_round(0x9E37_79B9_7F4A_7C15 ^ round.wrapping_mul(0x2545_F491_4F6C_DD1D));
    }
}

fn generated_round(seed: u64) {
    let mut g = Gen(seed);
    let mut taken = 0;
    for _ in 0..3000 {
        let mut doc = String::new();
        if g.chance(4) {
            doc.push_str("---\n");
        }
        let indent = if g.chance(10) { 2 } else { 0 };
        g.block(&mut doc, indent, 0);
        if same(&doc) {
            taken += 1;
        }
        for _ in 0..4 {
            let m = g.mutate(&doc);
            same(&m);
        }
    }
    assert!(taken > 1500, "the fast path took only {taken} of 3000 generated documents");
}
