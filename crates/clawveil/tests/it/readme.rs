//! The README's configuration reference is generated from the config structs.

const BEGIN: &str = "<!-- BEGIN CONFIG REFERENCE -->\n";
const END: &str = "<!-- END CONFIG REFERENCE -->";

#[test]
fn readme_config_reference_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = (
        readme.find(BEGIN).expect("begin marker") + BEGIN.len(),
        readme.find(END).expect("end marker"),
    );
    let want = clawveil_config::reference_markdown();
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}{}{}", &readme[..start], want, &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        readme[start..end] == want,
        "README.md's configuration reference is out of date: run UPDATE_README=1 cargo test -p clawveil readme"
    );
}
