use super::*;
use crate::rules::Enabled;

fn all() -> NumRules {
    NumRules::new(Enabled::default().with(PHONE).with(ID_CARD).with(BANK_CARD))
}

fn found(s: &str) -> Vec<(&str, &'static str)> {
    let mut hits = Vec::new();
    scan(s.as_bytes(), 0..s.len(), all(), &mut hits);
    hits.iter()
        .map(|h| (&s[h.start..h.end], crate::rules::BUILTIN[h.rule as usize]))
        .collect()
}

#[test]
fn phones() {
    for p in [
        "13812345678",
        "+8613812345678",
        "+86 138 1234 5678",
        "0086 138-1234-5678",
        "138 1234 5678",
        "+1 (415) 555-2671",
        "+44 20 7946 0958",
    ] {
        let text = format!("call {p}, thanks");
        assert_eq!(found(&text), [(p, "phone")], "{p}");
    }
    assert_eq!(found("手机13912345678谢谢"), [("13912345678", "phone")]);
    assert_eq!(found("(+86) 13812345678"), [("+86) 13812345678", "phone")]);
    assert_eq!(found("(13812345678)"), [("13812345678", "phone")]);
    assert_eq!(
        found("13812345678 13987654321"),
        [("13812345678", "phone"), ("13987654321", "phone")]
    );
}

#[test]
fn a_run_splits_into_the_numbers_that_cover_it() {
    // the first thirteen digits alone would be a valid E.164 number and
    // leave `0000-0000` of the mobile after it (found by a proptest)
    assert_eq!(
        found(" +1000000000 ( 130-0000-0000 "),
        [("+1000000000", "phone"), ("130-0000-0000", "phone")]
    );
    assert_eq!(
        found("138 1234 5678 139 8765 4321"),
        [("138 1234 5678", "phone"), ("139 8765 4321", "phone")]
    );
}

#[test]
fn not_phones() {
    for s in [
        "12812345678", // no such mobile prefix
        "1381234567",  // too short
        "abc13812345678",
        "13812345678abc",
        "ORD-20240101",
        "1700000000000",
        "v1.2.3.4",
        "3.13812345678",
        "550e8400-e29b-41d4-a716-446655440000",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "2024-01-01 12:00:00",
        "+12",
    ] {
        assert_eq!(found(s), [], "{s}");
    }
}

#[test]
fn id_cards() {
    assert_eq!(
        found("ID 11010519491231002X."),
        [("11010519491231002X", "id-card")]
    );
    assert_eq!(
        found("110105 19491231 002X"),
        [("110105 19491231 002X", "id-card")]
    );
    // bad checksum: an ordinary number
    assert_eq!(found("110105194912310021"), []);
}

#[test]
fn bank_cards() {
    assert_eq!(
        found("card 4111111111111111"),
        [("4111111111111111", "bank-card")]
    );
    assert_eq!(
        found("4111 1111 1111 1111"),
        [("4111 1111 1111 1111", "bank-card")]
    );
    assert_eq!(
        found("4111-1111-1111-1111"),
        [("4111-1111-1111-1111", "bank-card")]
    );
    assert_eq!(found("4111111111111112"), []); // Luhn-invalid
    assert_eq!(found("41111 11111 111111"), []); // not a card grouping
                                                 // Luhn-valid but led by 1: a timestamp-like number
    let ts = (0..10)
        .map(|d| format!("170000000000{d}"))
        .find(|t| checksum::luhn(t.as_bytes()))
        .unwrap();
    assert_eq!(found(&ts), []);
}

#[test]
fn disabled_rules_do_not_match() {
    let only_bank = NumRules::new(Enabled::default().with(BANK_CARD));
    let mut hits = Vec::new();
    let s = b"13812345678 11010519491231002X";
    scan(s, 0..s.len(), only_bank, &mut hits);
    assert!(hits.is_empty());
}

#[test]
fn simd_starts_match_a_byte_by_byte_reading() {
    let naive = |w: &[u8; 17]| -> u128 {
        let mut m = 0;
        for k in 0..16 {
            let (b, before) = (w[k + 1], is_alnum(w[k]));
            if (b.is_ascii_digit() && !before) || b == b'+' || b == b'(' {
                m |= 1 << (8 * k);
            }
        }
        m
    };
    let bytes: Vec<u8> = (0..=255).collect();
    for &b in &bytes {
        for k in 0..17 {
            for fill in [b'a', b'1', 0, b' ', 0x7f, 0x80, 0xff, b'.', b'Z'] {
                let mut w = [fill; 17];
                w[k] = b;
                assert_eq!(starts(&w), naive(&w), "{w:?}");
            }
        }
    }
}

#[test]
fn window_pads_with_zeros() {
    let hay = b"0123456789abcdefghij";
    assert_eq!(&padded_window(hay, 0)[..], b"\x000123456789abcdef");
    assert_eq!(&padded_window(hay, 1)[..], b"0123456789abcdefg");
    assert_eq!(&padded_window(hay, 10)[..], b"9abcdefghij\0\0\0\0\0\0");
    assert_eq!(padded_window(hay, 20)[0], b'j');
    assert_eq!(padded_window(hay, 25), [0; 17]);
}

#[test]
fn many_groups_do_not_blow_up() {
    let s = "1 ".repeat(10_000);
    assert_eq!(found(&s), []);
    let s = "1".repeat(10_000);
    assert_eq!(found(&s), []);
}

/// Pieces of text around digit runs: digits, separators, check characters,
/// letters, dots, CJK, and whole phones, IDs and cards.
const PIECES: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "13",
    "86",
    "0086",
    "138",
    "1234",
    "5678",
    "4111",
    "1111",
    "13812345678",
    "11010519491231002",
    "11010519491231002X",
    "110105",
    "19491231",
    "002X",
    "002x",
    "4111111111111111",
    "6217000123456789019",
    "1700000000000",
    "+86 138 1234 5678",
    "+1 (415) 555-2671",
    " ",
    "  ",
    "    ",
    "-",
    "(",
    ")",
    "+",
    "x",
    "X",
    "a",
    "Z",
    "ORD",
    ".",
    "1.2.3",
    "中",
    "。",
    "，",
    "\n",
    "\"",
];

fn both(hay: &[u8], range: std::ops::Range<usize>, rules: NumRules) -> (Vec<Hit>, Vec<Hit>) {
    let (mut new, mut old) = (Vec::new(), Vec::new());
    scan(hay, range.clone(), rules, &mut new);
    reference::scan(hay, range, rules, &mut old);
    (new, old)
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(2000))]

    #[test]
    fn same_hits_as_the_reference(
        pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..24),
        cut in (0usize..1000, 0usize..1000),
        (phone, id, bank) in (proptest::bool::weighted(0.8), proptest::bool::weighted(0.8), proptest::bool::weighted(0.8)),
    ) {
        let hay = pieces.concat().into_bytes();
        let rules = NumRules { phone, id, bank };
        let (a, b) = (cut.0 % (hay.len() + 1), cut.1 % (hay.len() + 1));
        for range in [0..hay.len(), a.min(b)..a.max(b)] {
            let (new, old) = both(&hay, range.clone(), rules);
            proptest::prop_assert_eq!(new, old, "{:?} {:?}", String::from_utf8_lossy(&hay), range);
        }
    }

    #[test]
    fn same_hits_as_the_reference_on_random_bytes(
        hay in proptest::collection::vec(proptest::sample::select(b"0123456789  -()+xX.aZ\xe4\xb8\xad".as_slice()), 0..80),
        cut in (0usize..100, 0usize..100),
    ) {
        let rules = NumRules { phone: true, id: true, bank: true };
        let (a, b) = (cut.0 % (hay.len() + 1), cut.1 % (hay.len() + 1));
        for range in [0..hay.len(), a.min(b)..a.max(b)] {
            let (new, old) = both(&hay, range.clone(), rules);
            proptest::prop_assert_eq!(new, old, "{:?} {:?}", hay, range);
        }
    }
}
