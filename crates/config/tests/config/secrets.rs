//! `${env:..}` / `${file:..}` secrets and permission checks through `parse`.

use clawveil_config::LoadOptions;

use crate::{err, full_in_tempdir, parse, private_file, tmp_path, HTTPS};

#[test]
fn missing_env_var_names_the_variable_and_the_key() {
    let src = format!("{HTTPS}[metrics]\ntoken = \"${{env:CLAWVEIL_TEST_NEVER_SET_XYZ}}\"\n");
    let msg = err(&src);
    assert_eq!(
        msg,
        "proxy.toml:4:1: metrics.token: environment variable CLAWVEIL_TEST_NEVER_SET_XYZ is not set (referenced as ${env:CLAWVEIL_TEST_NEVER_SET_XYZ}); set it or change the key"
    );
}

#[test]
fn missing_env_var_in_an_array_points_at_the_element() {
    std::env::set_var("CLAWVEIL_TEST_SECRETS_A", "a");
    let src = format!(
        "{HTTPS}[[route]]\nname = \"d\"\npath_prefix = \"/d/\"\nverify = \"dingtalk-robot\"\napp_secrets = [\"${{env:CLAWVEIL_TEST_SECRETS_A}}\", \"${{env:CLAWVEIL_TEST_SECRETS_UNSET}}\"]\n"
    );
    let msg = err(&src);
    assert!(msg.starts_with("proxy.toml:7:50: route[0].app_secrets[1]: environment variable CLAWVEIL_TEST_SECRETS_UNSET is not set"), "{msg}");
}

#[test]
fn bad_template_is_explained() {
    let msg = err(&format!("{HTTPS}[metrics]\ntoken = \"${{vault:x}}\"\n"));
    assert!(
        msg.starts_with(
            "proxy.toml:4:1: metrics.token: bad secret template: unknown secret source `vault`"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("${env:NAME}") && msg.contains("${file:/path}"),
        "{msg}"
    );
}

#[cfg(unix)]
#[test]
fn group_readable_secret_file_is_refused_with_chmod_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = tmp_path(&dir, "token");
    private_file(&path, "tok\n", 0o644);
    let src = format!(
        "{HTTPS}[metrics]\ntoken = \"${{file:{}}}\"\n",
        path.display()
    );
    let msg = err(&src);
    assert!(msg.starts_with("proxy.toml:4:1: metrics.token: "), "{msg}");
    assert!(
        msg.contains(&format!(
            "{} (metrics.token) is readable by group or others (mode 0644); run: chmod 600 {}",
            path.display(),
            path.display()
        )),
        "{msg}"
    );

    let lax = LoadOptions {
        allow_insecure_permissions: true,
    };
    let c = clawveil_config::parse(&src, "proxy.toml".as_ref(), &lax).unwrap();
    assert_eq!(c.metrics.tokens[0].expose(), "tok");
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].mode, 0o644);

    private_file(&path, "tok\n", 0o600);
    let c = parse(&src).unwrap();
    assert_eq!(c.metrics.tokens[0].expose(), "tok");
}

#[test]
fn missing_secret_file_is_named() {
    let msg = err(&format!(
        "{HTTPS}[log]\nhash_key = \"${{file:/nonexistent/clawveil/hash_key}}\"\n"
    ));
    assert_eq!(msg, "proxy.toml:4:1: log.hash_key: /nonexistent/clawveil/hash_key (log.hash_key) does not exist");
}

#[cfg(unix)]
#[test]
fn secrets_reload_after_rotation() {
    let (dir, src) = full_in_tempdir();
    let c = parse(&src).unwrap();
    let key = c.log.hash_key.as_ref().unwrap();
    private_file(&tmp_path(&dir, "hash_key"), "rotated\n", 0o600);
    assert_eq!(key.reload().unwrap().expose(), "rotated");
    std::fs::remove_file(tmp_path(&dir, "hash_key")).unwrap();
    let msg = key.reload().unwrap_err().to_string();
    let line = src.lines().position(|l| l.starts_with("hash_key")).unwrap() + 1;
    assert!(
        msg.starts_with(&format!("proxy.toml:{line}:1: log.hash_key:")),
        "{msg}"
    );
    assert!(msg.contains("does not exist"), "{msg}");
}

/// What the binary polls for changes: every `${file:..}` path, once, whichever keys
/// share it; environment variables and literals are not files.
#[cfg(unix)]
#[test]
fn secret_files_lists_every_file_once() {
    std::env::set_var("CLAWVEIL_TEST_SECRET_FILES_ENV", "from-env-0123456789");
    let dir = tempfile::tempdir().unwrap();
    for name in ["b_token", "a_token", "app", "hash", "model_key"] {
        private_file(&tmp_path(&dir, name), "value-0123456789\n", 0o600);
    }
    let p = |name: &str| tmp_path(&dir, name);
    let src = format!(
        "{HTTPS}[log]\nhash_key = \"${{file:{hash}}}\"\n\
         [metrics]\ntoken = [\"${{file:{b}}}\", \"x${{file:{a}}}\", \"${{env:CLAWVEIL_TEST_SECRET_FILES_ENV}}\", \"literal-0123456789\"]\n\
         [[route]]\nname = \"d\"\npath_prefix = \"/d/\"\nverify = \"dingtalk-robot\"\n\
         app_secrets = [\"${{file:{app}}}\", \"${{file:{a}}}-${{file:{app}}}\"]\n\
         [egress]\n[[egress.target]]\nname = \"m\"\nurl = \"https://models.example\"\n\
         inject_headers = {{ Authorization = \"Bearer ${{file:{model}}}\" }}\n",
        model = p("model_key").display(),
        hash = p("hash").display(),
        a = p("a_token").display(),
        b = p("b_token").display(),
        app = p("app").display(),
    );
    let c = parse(&src).unwrap();
    assert_eq!(
        c.secret_files(),
        vec![
            p("a_token"),
            p("app"),
            p("b_token"),
            p("hash"),
            p("model_key")
        ]
    );
    assert_eq!(c.secrets().count(), 8);
    let c = parse(&format!(
        "{HTTPS}[metrics]\ntoken = \"${{env:CLAWVEIL_TEST_SECRET_FILES_ENV}}\"\n"
    ))
    .unwrap();
    assert!(c.secret_files().is_empty());
}
