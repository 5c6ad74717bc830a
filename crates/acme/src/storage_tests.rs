//! Tests of the storage layout: modes, sealing, damaged files, the lock.
use super::*;
use clawveil_config::secret::Secret;

const K: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn cfg(dir: &Path, key: Option<&str>) -> clawveil_config::Acme {
    clawveil_config::Acme {
        domains: vec!["localhost".into()],
        contact: vec![],
        directory: "https://127.0.0.1:1/dir".into(),
        challenge: clawveil_config::Challenge::Http01,
        storage: dir.join("acme"),
        renew_before: None,
        ca_roots: None,
        eab_kid: None,
        eab_hmac: None,
        storage_key: key.map(Secret::literal),
        profile: None,
    }
}

fn pair() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn modes_sealing_and_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Storage::new(&cfg(tmp.path(), Some(K))).unwrap();
    s.prepare().unwrap();
    let (chain, key) = pair();
    s.save_cert(chain.as_bytes(), key.as_bytes(), Some("shortlived"))
        .unwrap();
    assert_eq!(
        fs::metadata(s.dir()).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let (_, meta) = s.read_cert_info().unwrap().unwrap();
    assert_eq!(meta.unwrap().profile.as_deref(), Some("shortlived"));
    // metadata that belongs to another certificate is not shown
    assert_eq!(s.read_cert_meta(b"another leaf"), None);
    for f in [CERT, KEY, CERT_META] {
        assert_eq!(
            fs::metadata(s.path(f)).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(!String::from_utf8_lossy(&fs::read(s.path(KEY)).unwrap()).contains("PRIVATE KEY"));
    assert!(matches!(
        s.load_cert(&["localhost".into()]).unwrap(),
        StoredCert::Usable(_)
    ));
    assert!(
        matches!(s.load_cert(&["other.test".into()]).unwrap(), StoredCert::Unusable(m) if m.contains("other.test"))
    );

    // a wrong key is an error, not garbage
    let wrong = Storage::new(&cfg(tmp.path(), Some(&K.replace('0', "1")))).unwrap();
    let e = wrong
        .load_cert(&["localhost".into()])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("storage_key does not match the sealed files in"),
        "{e}"
    );
    // no key at all
    let none = Storage::new(&cfg(tmp.path(), None)).unwrap();
    assert!(matches!(
        none.load_cert(&["localhost".into()]),
        Err(AcmeError::SealedWithoutKey { .. })
    ));

    // a damaged key file makes the certificate unusable (re-ordered), not a crash
    let mut sealed = fs::read(s.path(KEY)).unwrap();
    let n = sealed.len() - 3;
    sealed[n] ^= 0x55;
    fs::write(s.path(KEY), &sealed).unwrap();
    assert!(
        matches!(s.load_cert(&["localhost".into()]).unwrap(), StoredCert::Unusable(m) if m.contains("corrupted"))
    );
}

#[test]
fn plaintext_is_sealed_when_a_key_appears() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = Storage::new(&cfg(tmp.path(), None)).unwrap();
    plain.prepare().unwrap();
    let (chain, key) = pair();
    plain
        .save_cert(chain.as_bytes(), key.as_bytes(), None)
        .unwrap();
    assert!(String::from_utf8_lossy(&fs::read(plain.path(KEY)).unwrap()).contains("PRIVATE KEY"));
    let sealed = Storage::new(&cfg(tmp.path(), Some(K))).unwrap();
    assert!(matches!(
        sealed.load_cert(&["localhost".into()]).unwrap(),
        StoredCert::Usable(_)
    ));
    assert!(!String::from_utf8_lossy(&fs::read(plain.path(KEY)).unwrap()).contains("PRIVATE KEY"));
}

#[test]
fn garbage_chain_is_unusable_and_lock_is_exclusive() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Storage::new(&cfg(tmp.path(), None)).unwrap();
    s.prepare().unwrap();
    let (_, key) = pair();
    s.save_cert(
        b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        key.as_bytes(),
        None,
    )
    .unwrap();
    assert!(matches!(
        s.load_cert(&["localhost".into()]).unwrap(),
        StoredCert::Unusable(_)
    ));
    assert!(s.read_cert_info().is_err());

    let held = s.lock().unwrap();
    assert!(matches!(s.lock(), Err(AcmeError::Locked { .. })));
    drop(held);
    let _again = s.lock().unwrap();
}

#[test]
fn corrupted_account_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Storage::new(&cfg(tmp.path(), None)).unwrap();
    s.prepare().unwrap();
    s.write_plain(ACCOUNT, b"{not json").unwrap();
    let e = s.load_account("https://x/dir").err().unwrap().to_string();
    assert!(e.contains("account.json is corrupted"), "{e}");
}
