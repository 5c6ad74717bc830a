//! Shared helpers for the benchmarks: the corpus fixtures of
//! `crates/redact/tests/corpus`, with their placeholders filled in.

/// Where the fixtures are.
pub const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/redact/tests/corpus/"
);

/// A PRC resident ID number with a valid check character.
pub fn id_card(first17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{first17}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

/// `prefix` and the digit that makes it Luhn-valid.
pub fn luhn(prefix: &str) -> String {
    (0..10)
        .map(|d| format!("{prefix}{d}"))
        .find(|n| {
            let s: u32 = n
                .bytes()
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
                .sum();
            s % 10 == 0
        })
        .unwrap()
}

/// Fills every `{{NAME}}` placeholder with a synthetic value of the right shape.
pub fn fill(template: &str) -> String {
    let values = [
        (
            "CONV_ID",
            "cidQ3mZ8vN2kT7xR1pL5wB9yH4jF6sD0aG+==".to_owned(),
        ),
        (
            "CHATBOT_ID",
            "$:LWCP_v1:$Zx8Kq2Lm5Np7Rs1Tv4Wy6Ab9Cd3Ef0Gh".into(),
        ),
        (
            "AT_USER_ID",
            "$:LWCP_v1:$Hq1Jw3Ke5Lr7Mt9Ny2Pu4Qi6Ro8Sa0Td".into(),
        ),
        ("AT_STAFF_ID", "0125381846791066".into()),
        ("SENDER_ID", "$:LWCP_v1:$Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9".into()),
        ("CORP_ID", "ding9f50b15bccd16741".into()),
        ("NICK", "王小明".into()),
        ("STAFF_ID", "manager4220".into()),
        ("SESSION", "d5a1f0c3b2e94f8a7b6c5d4e3f2a1b0c".into()),
        ("PHONE_CN_SPACED", "+86 139 8765 4321".into()),
        ("PHONE_CN", "13912345678".into()),
        ("PHONE_INTL", "+1 415 555 2671".into()),
        ("EMAIL2", "ops-team+alerts@corp.example.org".into()),
        ("EMAIL", "wang.xiaoming@example.com.cn".into()),
        ("ID_CARD_X", id_card("44030519851120001")),
        ("ID_CARD", id_card("11010519900307123")),
        ("CARD_SPACED", luhn("411111222233334")),
        ("CARD", luhn("621700012345678901")),
        (
            "OPENAI_KEY",
            "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7cD0eF".into(),
        ),
        (
            "ANTHROPIC_KEY",
            "sk-ant-api03-Zy9xW8vU7tS6rQ5pO4nM3lK2jI1hG0fE-dC_bA".into(),
        ),
        ("AWS_KEY", "AKIAIOSFODNN7EXAMPLE".into()),
        (
            "AWS_SECRET",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        ),
    ];
    let mut out = template.to_owned();
    for (k, v) in values {
        out = out.replace(&format!("{{{{{k}}}}}"), &v);
    }
    out
}

/// The named fixtures, filled.
pub fn load(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| fill(&std::fs::read_to_string(format!("{CORPUS}{n}")).expect("fixture")))
        .collect()
}

/// The three DingTalk robot callbacks the engine figures are measured on.
pub const CALLBACKS: [&str; 3] = [
    "dingtalk_group_text.json",
    "dingtalk_single_chat.json",
    "dingtalk_rich_text.json",
];
