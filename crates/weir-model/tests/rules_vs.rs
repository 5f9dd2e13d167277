//! One invalid case and its nearest valid case for every validation rule in
//! `validation-rules.md`. Each case is a resource whose expected finding sits on the
//! line marked `#<`; the test asserts the code, the field path and that line, then
//! applies the fix (a text replacement) and asserts the finding is gone and nothing
//! else became an error.

mod support;

use support::{Case, run_cases};

const CASES: &[Case] = &[
    // --- C-1 durations -------------------------------------------------------------
    Case {
        rule: "C-1 zero duration",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    timeout: 0s #<",
        code: "IST0106",
        path: "spec.http[0].timeout",
        fix: ("0s", "1s"),
    },
];

#[test]
fn every_rule_has_an_invalid_and_a_valid_case() {
    run_cases(CASES);
}
