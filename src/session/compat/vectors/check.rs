//! Runs a framework's `open` over every case and edge case of a vector
//! file, with the checks that keep the files honest.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Case, Duplicates, EdgeCase, Expect, VectorFile, cookie_from_header, newest_first, set_cookie_value};
use crate::session::compat::CompatRejected;

/// A framework module's `open`.
pub(in crate::session::compat) type OpenFn =
    fn(&str, &[&[u8]], u64, Option<u64>) -> Result<Map<String, Value>, CompatRejected>;

/// Opens every case's cookie with its keys, clock and `max_age`, and
/// compares the outcome with `expected(case)`. Returns the outcomes seen.
pub(in crate::session::compat) fn check_cases(
    vectors: &VectorFile,
    open: OpenFn,
    expected: impl Fn(&Case) -> Result<Map<String, Value>, CompatRejected>,
) -> Tally {
    let mut seen = Tally::default();
    for case in &vectors.cases {
        check_shape(case);
        let got = open(&case.cookie, &newest_first(&case.secret_keys), case.now, case.max_age);
        assert_eq!(got, expected(case), "case {}", case.name);
        seen.add(got.err().map_or("valid", CompatRejected::as_str));
    }
    assert_eq!(seen.total(), vectors.header.counts.cases);
    seen
}

/// Self-consistency of a case, so that the fields the other checks rely on
/// mean what `FORMATS.md` says.
fn check_shape(case: &Case) {
    assert_eq!(
        case.secret_keys.last(),
        Some(&case.secret),
        "case {}: signing key",
        case.name
    );
    let sources = ["fastapi_testclient", "flask_test_client", "itsdangerous"];
    assert!(
        sources.contains(&case.source.as_str()),
        "case {}: source {}",
        case.name,
        case.source
    );
    if let Some(header) = &case.set_cookie_header {
        assert_eq!(
            set_cookie_value(header),
            case.cookie,
            "case {}: set_cookie_header",
            case.name
        );
    }
    if case.expect == Expect::Valid {
        assert!(case.payload.is_some(), "case {}: valid without payload", case.name);
        assert!(
            case.serialized_json.is_some(),
            "case {}: valid without serialized_json",
            case.name
        );
        assert!(case.timestamp.is_some(), "case {}: valid without timestamp", case.name);
        assert!(
            case.signed_with.is_some(),
            "case {}: valid without signed_with",
            case.name
        );
    }
}

/// usher's decision on one edge case: `None` to accept (with the payload
/// Python read), or the rejection.
pub(in crate::session::compat) type Decision = (&'static str, Option<CompatRejected>);

/// Runs every edge case against `decisions`, which must name each one.
/// `accept` and `reject` recommendations bind; `either` is ours to choose.
/// Cases that give a whole `Cookie` header are read with the app's rule for
/// duplicate names. Returns how many ran.
pub(in crate::session::compat) fn check_edge_cases(
    vectors: &VectorFile,
    open: OpenFn,
    rule: Duplicates,
    decisions: &[Decision],
) -> usize {
    assert_eq!(decisions.len(), vectors.edge_cases.len(), "one decision per edge case");
    for edge in &vectors.edge_cases {
        let decision = decisions
            .iter()
            .find(|(name, _)| *name == edge.name)
            .unwrap_or_else(|| panic!("no decision for edge case {}", edge.name))
            .1;
        check_recommendation(edge, decision);
        let value = match &edge.cookie_header {
            Some(header) => cookie_from_header(header, "session", rule).expect("header names the session cookie"),
            None => edge.cookie.as_str(),
        };
        let got = open(value, &newest_first(&edge.secret_keys), edge.now, edge.max_age);
        match decision {
            None => assert_eq!(got.as_ref().ok(), edge.payload.as_ref(), "edge case {}", edge.name),
            Some(rejection) => assert_eq!(got, Err(rejection), "edge case {}", edge.name),
        }
    }
    vectors.edge_cases.len()
}

fn check_recommendation(edge: &EdgeCase, decision: Option<CompatRejected>) {
    assert_eq!(
        edge.secret_keys.last(),
        Some(&edge.secret),
        "edge case {}: signing key",
        edge.name
    );
    match edge.recommended.as_str() {
        "accept" => assert!(decision.is_none(), "edge case {} must be accepted", edge.name),
        "reject" => assert!(decision.is_some(), "edge case {} must be rejected", edge.name),
        "either" => {}
        other => panic!("edge case {}: unknown recommendation {other:?}", edge.name),
    }
    if decision.is_none() {
        assert_eq!(
            edge.python_result, "valid",
            "edge case {}: accepted but Python did not",
            edge.name
        );
        assert!(
            edge.payload.is_some(),
            "edge case {}: accepted without payload",
            edge.name
        );
    }
}

/// Counts how often each label occurs, for summaries that must add up.
#[derive(Debug, Default)]
pub(in crate::session::compat) struct Tally(BTreeMap<&'static str, usize>);

impl Tally {
    pub(in crate::session::compat) fn add(&mut self, label: &'static str) {
        *self.0.entry(label).or_default() += 1;
    }

    pub(in crate::session::compat) fn get(&self, label: &str) -> usize {
        self.0.get(label).copied().unwrap_or(0)
    }

    pub(in crate::session::compat) fn total(&self) -> usize {
        self.0.values().sum()
    }
}

/// Changes each character of every valid cookie in turn (to another base64
/// character, and to `.`): no change may still open. Returns how many
/// variants were tried.
pub(in crate::session::compat) fn check_single_char_tampering(vectors: &VectorFile, open: OpenFn) -> usize {
    let mut tried = 0;
    for case in vectors.cases.iter().filter(|c| c.expect == Expect::Valid) {
        let keys = newest_first(&case.secret_keys);
        for (index, original) in case.cookie.char_indices() {
            let other = if original == 'A' { 'B' } else { 'A' };
            for replacement in [other, '.'].into_iter().filter(|r| *r != original) {
                let mut tampered = case.cookie.clone();
                tampered.replace_range(index..index + original.len_utf8(), replacement.encode_utf8(&mut [0; 4]));
                let got = open(&tampered, &keys, case.now, case.max_age);
                assert!(got.is_err(), "case {}: {tampered:?} opened", case.name);
                tried += 1;
            }
        }
    }
    tried
}

/// Deterministic pseudo-random payload segments over `alphabet`, for
/// signing and feeding to a decoder that must not panic.
pub(in crate::session::compat) fn garbage_segments(alphabet: &[u8], count: usize) -> Vec<String> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64: fixed seed, so failures reproduce.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let len = (next() % 200) as usize;
            (0..len)
                .map(|_| char::from(alphabet[(next() % alphabet.len() as u64) as usize]))
                .collect()
        })
        .collect()
}
