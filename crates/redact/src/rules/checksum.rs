//! Checksums that separate real identifiers from random digit runs.

/// Luhn (mod 10) check over ASCII digits.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &b) in digits.iter().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

/// ISO 7064 MOD 11-2 check character of the first 17 digits of a PRC resident ID
/// (`0`..`9` or `X`).
pub(crate) fn id_check_char(first17: &[u8]) -> Option<u8> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (&b, w) in first17.iter().zip(WEIGHTS) {
        if !b.is_ascii_digit() {
            return None;
        }
        sum += u32::from(b - b'0') * w;
    }
    Some(CHECK[(sum % 11) as usize])
}

/// An 18-character PRC resident ID: a plausible region and birth date, and the
/// MOD 11-2 check character.
pub(crate) fn id_card(id: &[u8]) -> bool {
    if id.len() != 18 || !(b'1'..=b'9').contains(&id[0]) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        id[r].iter().try_fold(0u32, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day)) = (num(6..10), num(10..12), num(12..14)) else {
        return false;
    };
    if !(1900..=2099).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    id_check_char(&id[..17]) == Some(id[17].to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_values() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"79927398710"));
        assert!(!luhn(b"4111111111111112"));
        assert!(!luhn(b""));
        assert!(!luhn(b"41x1"));
    }

    #[test]
    fn id_card_checksum() {
        // The GB 11643-1999 worked example.
        assert_eq!(id_check_char(b"11010519491231002"), Some(b'X'));
        assert!(id_card(b"11010519491231002X"));
        assert!(id_card(b"11010519491231002x"));
        assert!(!id_card(b"110105194912310021"));
        // valid checksum but impossible birth date
        let mut bad = *b"11010519491331002?";
        bad[17] = id_check_char(&bad[..17]).unwrap();
        assert!(!id_card(&bad));
        assert!(!id_card(b"1101051949123100"));
    }
}
