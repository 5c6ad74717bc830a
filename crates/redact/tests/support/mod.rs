//! Synthetic identifiers for the tests: valid in shape and checksum, made up.
#![allow(dead_code)]

/// ISO 7064 MOD 11-2 check character for the first 17 digits of an ID number.
pub fn id_check(first17: &str) -> char {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    b"10X98765432"[(sum % 11) as usize] as char
}

/// A resident ID number with a valid check character.
pub fn id_card(first17: &str) -> String {
    format!("{first17}{}", id_check(first17))
}

/// A resident ID number with a wrong check character.
pub fn bad_id_card(first17: &str) -> String {
    let good = id_check(first17);
    let bad = if good == '0' { '1' } else { '0' };
    format!("{first17}{bad}")
}

fn luhn_sum(n: &str) -> u32 {
    n.bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0') * if i % 2 == 1 { 2 } else { 1 };
            if d > 9 {
                d - 9
            } else {
                d
            }
        })
        .sum()
}

/// `prefix` and the Luhn check digit that makes it valid.
pub fn luhn_complete(prefix: &str) -> String {
    (0..10)
        .map(|d| format!("{prefix}{d}"))
        .find(|n| luhn_sum(n) % 10 == 0)
        .expect("one digit fits")
}

/// `prefix` and a check digit that makes it Luhn-invalid.
pub fn luhn_invalid(prefix: &str) -> String {
    (0..10)
        .map(|d| format!("{prefix}{d}"))
        .find(|n| luhn_sum(n) % 10 != 0)
        .expect("nine digits fit")
}

/// Groups of four, separated by `sep`.
pub fn grouped(n: &str, sep: &str) -> String {
    n.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(sep)
}

/// Every `n`-character piece of `value` (all of it when shorter).
pub fn pieces(value: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= n {
        return vec![value.to_owned()];
    }
    chars.windows(n).map(|w| w.iter().collect()).collect()
}
