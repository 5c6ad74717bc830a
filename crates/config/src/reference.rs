//! The configuration reference: one entry per key of `proxy.toml` (type, default,
//! meaning). It renders the README's reference ([`reference_markdown`]), supplies the
//! "valid keys" and "expected type" of error messages, and is tested against the raw
//! serde structs so that neither can drift from the other.

/// One key.
pub(crate) struct KeyDoc {
    pub key: &'static str,
    pub ty: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
    /// Set when the running binary does not enforce the key yet: it is refused at load
    /// and left out of the README reference.
    pub not_yet: Option<NotYet>,
}

/// One table (`[listen]`) or array of tables (`[[route]]`).
pub(crate) struct SectionDoc {
    /// Dotted name without indices: `""` (top level), `listen`, `redact.rule`.
    pub name: &'static str,
    pub array: bool,
    pub about: &'static str,
    pub keys: &'static [KeyDoc],
    /// Set when the running binary does not enforce the section yet (nor anything in
    /// it, nor its sub-tables).
    pub not_yet: Option<NotYet>,
}

/// Why a documented key or section is refused: "not supported yet: `what`; `hint`".
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotYet {
    pub what: &'static str,
    pub hint: &'static str,
}

const fn k(
    key: &'static str,
    ty: &'static str,
    default: &'static str,
    doc: &'static str,
) -> KeyDoc {
    KeyDoc {
        key,
        ty,
        default,
        doc,
        not_yet: None,
    }
}

const fn table(name: &'static str, about: &'static str, keys: &'static [KeyDoc]) -> SectionDoc {
    SectionDoc {
        name,
        array: false,
        about,
        keys,
        not_yet: None,
    }
}

const fn array(name: &'static str, about: &'static str, keys: &'static [KeyDoc]) -> SectionDoc {
    SectionDoc {
        array: true,
        ..table(name, about, keys)
    }
}

impl KeyDoc {
    /// Marks the key as documented but not enforced yet.
    const fn not_yet(self, not_yet: NotYet) -> Self {
        KeyDoc {
            not_yet: Some(not_yet),
            ..self
        }
    }
}

impl SectionDoc {
    /// Marks the section as documented but not enforced yet.
    const fn not_yet(self, not_yet: NotYet) -> Self {
        SectionDoc {
            not_yet: Some(not_yet),
            ..self
        }
    }

    /// Marks the section as not enforced yet unless `supported`.
    const fn not_yet_unless(self, supported: bool, not_yet: NotYet) -> Self {
        if supported {
            self
        } else {
            self.not_yet(not_yet)
        }
    }
}

const REQUIRED: &str = "required";
const NONE: &str = "unset";

/// **The switch for `[egress]`.** While false, `[egress]` and `[[egress.target]]` (every
/// key in them) are refused by [`parse`](crate::parse) as "not supported yet" and left out
/// of the README reference; their validation runs only in this crate's tests (through
/// `parse_unsupported`). The egress listener flips it to true when it lands: nothing else
/// in this crate needs to change (its tests follow the switch), then regenerate the
/// README with `UPDATE_README=1 cargo test -p clawveil --test integration readme`.
pub(crate) const EGRESS_SUPPORTED: bool = true;

const EGRESS: NotYet = NotYet {
    what: "the egress listener is not implemented in this version",
    hint: "remove [egress] (the bot keeps calling its model gateway directly)",
};
const FALLBACK: NotYet = NotYet {
    what: "a fallback upstream is not implemented in this version",
    hint: "remove upstream.fallback (requests go to upstream.url only)",
};

pub(crate) static SECTIONS: &[SectionDoc] = &[
    table("", "Keys before the first table.", &[
        k("trusted_proxies", "[CIDR]", "[]", "Peers whose `X-Forwarded-For` is believed (for `allow_cidrs` and logs). CIDRs like `10.0.0.0/8` or single IPs."),
    ]),
    table("listen", "Where clawveil listens. Addresses are `ip:port` (IPv6 as `[::]:443`); port 0 picks a free port.", &[
        k("https", "address", REQUIRED, "TLS listener (HTTP/1.1 and HTTP/2 by ALPN)."),
        k("http", "address", NONE, "Plain-HTTP listener: ACME HTTP-01 answers and a 308 to https, nothing else. Required by `acme.challenge = \"http-01\"`."),
        k("metrics", "address", "`127.0.0.1:9464`", "`/metrics`, `/healthz`, `/readyz`. A non-loopback address requires `metrics.token`; `\"\"` disables the listener."),
        k("server_names", "[string]", "[] (any)", "Host names served on `https`; other hosts, and a `Host` that differs from the TLS SNI, get 421. Empty: any. Each an exact name (`bot.example.com`, or an IP address) or `*.` and a name (`*.example.org`), without scheme or port; compared in lowercase."),
    ]),
    table("upstream", "The bot behind the proxy.", &[
        k("url", "URL", "`http://127.0.0.1:8080`", "`http://host:port` (or `https://`) of the bot, optionally with a path prefix."),
        k("connect_timeout", "duration", "`2s`", "Time to establish a connection to the upstream. At most 5m."),
        k("response_timeout", "duration", "`30s`", "Until response headers arrive; then bodies stream. At most 24h."),
        k("fallback", "URL", NONE, "A second upstream, same form as `url`.").not_yet(FALLBACK),
        k("exposure_check", "duration", "`30s`", "How often (and once at start) clawveil looks, on Linux in `/proc/net/tcp` and `/proc/net/tcp6`, for the bot listening on the upstream's port on a non-loopback address (`0.0.0.0`, `::` or any other), where it can be reached without clawveil; with `[egress]`, also every other listening socket of the process that owns that port, when clawveil may read its `/proc/<pid>/fd`. Found: an error log line naming the address and port, and `clawveil_upstream_exposed` = 1. From 100ms to 1h; `\"0s\"` turns the check off."),
        k("require_loopback", "bool", "`true` when the host of `url` is a loopback address or `localhost`, else `false`", "While the bot is exposed, `/readyz` answers 503 with the address to rebind. `true` is refused with a non-loopback `url` (the bot would never be ready) and with `exposure_check = \"0s\"`."),
    ]),
    table("tls", "The serving certificate and TLS policy. Without `[tls]` the mode is `self-signed`.", &[
        k("mode", "\"acme\" | \"files\" | \"self-signed\"", "`self-signed`", "`acme`: obtained and renewed (needs `[acme]`); `files`: `cert` and `key` from disk, reloaded on SIGHUP and on change; `self-signed`: generated on first start, for development."),
        k("min_version", "\"1.2\" | \"1.3\"", "`1.2`", "Lowest TLS version offered."),
        k("hsts", "string", "`max-age=31536000; includeSubDomains`", "`Strict-Transport-Security` header value; `\"\"` disables it."),
        k("cert", "path", "`certs/fullchain.pem` (files), `certs/selfsigned.pem` (self-signed)", "PEM chain, leaf first. Must exist in `files` mode."),
        k("key", "path", "`certs/privkey.pem` (files), `certs/selfsigned.key` (self-signed)", "PEM private key. In `files` mode it must exist and not be readable by group or others (`chmod 600`), except that a file owned by root and readable by its group alone (`0440`, `0640`) is accepted when that group is one clawveil runs with (`chown root:GROUP`; a Kubernetes Secret volume with `fsGroup`)."),
        k("names", "[string]", "`[\"localhost\", \"127.0.0.1\", \"::1\"]`", "Names put in the generated self-signed certificate."),
        k("watch_interval", "duration", "`2s`", "How often `files` mode checks `cert` and `key` for changes, and how often, in every mode, clawveil checks the files of `${file:..}` secrets: when one changes (its device, inode, modification time or size, after following symlinks, so a Kubernetes Secret update is seen), clawveil reloads as on SIGHUP and logs the path. From 100ms to 1h."),
    ]),
    table("acme", "Certificates by ACME (RFC 8555). Required when `tls.mode = \"acme\"`.", &[
        k("domains", "[string]", REQUIRED, "Non-empty; one certificate carries all of them: DNS names, IPv4 or IPv6 addresses (RFC 8738; validated by `http-01` or `tls-alpn-01`). No wildcards."),
        k("contact", "[string]", "[]", "Account contacts, each `mailto:...`."),
        k("directory", "URL", "`https://acme-v02.api.letsencrypt.org/directory`", "ACME directory URL (`https://` only)."),
        k("challenge", "\"http-01\" | \"tls-alpn-01\"", "`http-01`", "`http-01` is answered on `listen.http` (which it requires); `tls-alpn-01` on `listen.https`."),
        k("storage", "path", "`certs/acme`", "Directory for the account and certificates; files 0600, written atomically."),
        k("renew_before", "duration", "a third of the lifetime", "When the CA offers no renewal information (ARI): renew when less than this, or a third of the certificate's lifetime, whichever is larger, remains. Leave unset for short-lived certificates: a value longer than the lifetime makes every certificate due at once (renewed about hourly)."),
        k("ca_roots", "path", NONE, "Extra PEM roots to trust the ACME server (private CA, Pebble in tests)."),
        k("eab_kid", "secret", NONE, "External account binding key id; set together with `eab_hmac`."),
        k("eab_hmac", "secret", NONE, "External account binding HMAC key (base64url); set together with `eab_kid`."),
        k("storage_key", "secret", NONE, "Seals stored private keys with AES-256-GCM: 32 bytes as 64 hex characters (`openssl rand -hex 32`)."),
        k("profile", "string", NONE, "Certificate profile to order (`shortlived`, `tlsserver`, `classic` at Let's Encrypt), sent on every order and renewal; at start it must be one the directory advertises. Unset: the CA's default. Let's Encrypt issues IP-address certificates only with `shortlived`."),
    ]),
    table("limits", "Resource limits on the https listener.", &[
        k("max_body", "size", "`10MiB`", "Larger request bodies get 413. At most 64GiB."),
        k("max_header_bytes", "size", "`64KiB`", "Larger request heads get 431. From 1KiB to 1MiB."),
        k("header_read_timeout", "duration", "`10s`", "Clients that have not sent a full request head by then are cut. At most 10m."),
        k("request_timeout", "duration", "`60s`", "The whole request body must have arrived by then. At most 24h."),
        k("max_connections", "integer", "`10000`", "Concurrent connections; further ones wait in the accept queue. From 1 to 1000000."),
        k("drain_timeout", "duration", "`30s`", "On SIGTERM, in-flight requests get this long to finish; `\"0s\"`: no drain. At most 1h."),
        k("idle_timeout", "duration", "`60s`", "A keep-alive connection with no request in flight, an HTTP/2 connection with no open stream, or a client that stops reading its response, is closed after this long. At most 24h."),
        k("tunnel_idle_timeout", "duration", "`10m`", "An upgraded (WebSocket) connection with no bytes either way is closed after this long. At most 24h."),
    ]),
    table("log", "Logs on stdout. Bodies are never logged unless `bodies = \"redacted\"`.", &[
        k("format", "\"json\" | \"pretty\"", "`pretty` on a terminal, `json` otherwise", "One JSON object per line, or human-readable. Unset: human-readable when stdout is a terminal, JSON lines when it is a pipe or a file (containers, systemd)."),
        k("level", "string", "`info`", "`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive such as `info,hyper=warn`."),
        k("bodies", "\"off\" | \"redacted\"", "`off`", "`redacted`: log a bounded body sample after the redaction engine."),
        k("body_max", "size", "`16KiB`", "Per direction, after redaction. At most 16MiB."),
        k("hash_key", "secret", NONE, "Identifiers become keyed hashes (same id → same tag) instead of fixed masks."),
    ]),
    table("redact", "The redaction engine applied to everything that is logged.", &[
        k("builtin", "[string]", "all", "Built-in rules: `email`, `phone`, `id-card`, `bank-card`, `bearer`, `api-key`, `jwt`, `url-secret`, `dingtalk`."),
        k("json_keys", "[string]", "[]", "Extra JSON keys whose values are always redacted."),
        k("headers", "[string]", "[]", "Extra header names whose values are always redacted."),
    ]),
    array("redact.rule", "Custom redaction rules, applied after the built-in ones.", &[
        k("name", "string", REQUIRED, "Unique; shown in place of what the rule redacts."),
        k("pattern", "string", REQUIRED, "A regular expression (Rust `regex` syntax) that must not match the empty string."),
        k("replace", "\"mask\" | \"hash\"", "`mask`", "A fixed mask, or a keyed hash (`log.hash_key`)."),
    ]),
    table("metrics", "The Prometheus endpoint.", &[
        k("token", "secret | [secret]", NONE, "Bearer token required on `/metrics`; mandatory when `listen.metrics` is not loopback. An array (`[\"${file:/run/secrets/metrics_new}\", \"${file:/run/secrets/metrics_old}\"]`) accepts any one of its tokens, for a rotation overlap; each is a secret (masked by `check`, re-read on SIGHUP and when its file changes), compared in constant time, and all are checked on every request. An empty string, an empty array and a duplicate entry are refused."),
    ]),
    array("route", "Routes by path prefix, longest prefix first. Without any, one route `default` for `/` with `verify = \"none\"`.", &[
        k("name", "string", REQUIRED, "Unique; the label used in logs and metrics."),
        k("path_prefix", "string", REQUIRED, "Starts with `/`; unique."),
        k("verify", "\"none\" | \"dingtalk-robot\" | \"dingtalk-event\"", "`none`", "`dingtalk-robot`: `timestamp` + `sign` headers; `dingtalk-event`: signature over token/timestamp/nonce/encrypt."),
        k("app_secrets", "[secret]", "[]", "Required (non-empty) for `dingtalk-robot`; several allow a rotation overlap."),
        k("max_skew", "duration", "`1h`", "Largest accepted difference between the request timestamp and now. At most 24h."),
        k("replay", "bool", "`true`", "A msgId answered 2xx inside `max_skew` is not forwarded again."),
        k("allow_cidrs", "[CIDR]", "[] (everyone)", "Optional client allow-list."),
        k("event_token", "secret", NONE, "Required for `dingtalk-event`."),
        k("event_aes_key", "secret", NONE, "EncodingAESKey, 43 characters; when set the ciphertext must also decrypt."),
        k("event_owner_key", "string", NONE, "corpId, appKey or suiteKey expected at the end of the decrypted plaintext."),
        k("allowed_origins", "[string]", "[] (any)", "WebSocket upgrades whose `Origin` is not listed get 403 (cross-site WebSocket hijacking). Empty: any. Each `https://host[:port]` or `http://host[:port]`, without path or trailing slash; compared in lowercase, a default port (`:443`, `:80`) dropped."),
        k("allow_trace", "bool", "`false`", "TRACE is refused with 405 unless true."),
    ]),
    // `[[egress.target]]` follows `[egress]`: a sub-table of a refused table is refused.
    table("egress", "Bot → model gateway: plain HTTP on loopback in, verified HTTPS out.", &[
        k("listen", "address", "`127.0.0.1:8089`", "Loopback only."),
        k("allow", "[string]", "[]", "Hosts CONNECT tunnels may reach (`api.dingtalk.com`, `*.dingtalk.com`), on one of `ports`."),
        k("ports", "[integer]", "`[443]`", "Ports CONNECT may reach. Non-empty; each from 1 to 65535, unique."),
        k("plain_http", "bool", "`false`", "Forward absolute-form `http://` requests to allowed hosts; refused by default (TLS everywhere)."),
        k("allow_cidrs", "[CIDR]", "[]", "Exceptions to the refused destination ranges (loopback, private, link-local, cloud metadata, ...), e.g. `10.20.0.0/16` for an internal service. Entries that together cover every IPv4 or IPv6 address (`0.0.0.0/0`, `::/0`, or all of the IPv4-mapped `::ffff:0:0/96`) are refused: they would switch the address checks off."),
        k("token", "secret", NONE, "Clients must send `Proxy-Authorization: Bearer <token>` (407 otherwise). At least 16 characters (`openssl rand -hex 32`)."),
    ]).not_yet_unless(EGRESS_SUPPORTED, EGRESS),
    array("egress.target", "Reverse-proxy targets: requests to `/<name>/...` go to target `name`.", &[
        k("name", "string", REQUIRED, "Unique; letters, digits, `-`, `_`, `.`."),
        k("url", "URL", REQUIRED, "`https://` only. The host may be an IP address, a private or loopback one included (an internal model gateway)."),
        k("fallback", "URL", NONE, "`https://` only; tried per `fallback_on`."),
        k("fallback_on", "[\"connect\" | \"timeout\" | \"5xx\"]", "`[\"connect\", \"timeout\"]`", "What sends a request to the fallback."),
        k("connect_timeout", "duration", "`2s`", "Time to connect (TCP and TLS)."),
        k("response_timeout", "duration", "`120s`", "Until response headers arrive."),
        k("models", "[string]", "[]", "Allow-list for the `model` metric label; others are `other`."),
        k("inject_headers", "table", "{}", "Header name → value (may contain secrets), e.g. `{ Authorization = \"Bearer ${file:/run/secrets/model_key}\" }`: the bot never holds the key."),
        k("client_token", "secret", NONE, "The bot must present it as `Authorization: Bearer <token>` or `x-api-key: <token>`; it is replaced by the injected key. At least 16 characters (`openssl rand -hex 32`), and not the injected key itself."),
        k("ca_roots", "path", NONE, "Extra PEM roots for this target (in addition to the system roots)."),
    ]),
];

/// The section named `name` (indices dropped: `route`, `egress.target`).
pub(crate) fn section(name: &str) -> Option<&'static SectionDoc> {
    SECTIONS.iter().find(|s| s.name == name)
}

/// The entry of `path` (`route.verify`).
pub(crate) fn key_doc(path: &str) -> Option<&'static KeyDoc> {
    let (sec, key) = path.rsplit_once('.').unwrap_or(("", path));
    section(sec)?.keys.iter().find(|k| k.key == key)
}

/// Whether section `s` and every section around it are enforced.
fn section_supported(s: &SectionDoc) -> bool {
    s.not_yet.is_none() && parent_supported(s)
}

/// Whether every section around `s` is enforced (the top level always is).
fn parent_supported(s: &SectionDoc) -> bool {
    s.name
        .rsplit_once('.')
        .is_none_or(|(parent, _)| section(parent).is_none_or(section_supported))
}

/// `listen.https`, `redact.rule.pattern`, `trusted_proxies`.
fn key_path(s: &SectionDoc, k: &KeyDoc) -> String {
    if s.name.is_empty() {
        k.key.to_owned()
    } else {
        format!("{}.{}", s.name, k.key)
    }
}

/// The direct sub-tables of section `name` (`rule` for `redact`, `listen` for the top).
fn children(name: &str) -> impl Iterator<Item = &'static SectionDoc> + '_ {
    SECTIONS
        .iter()
        .filter(move |s| match s.name.rsplit_once('.') {
            Some((parent, _)) => parent == name,
            None => name.is_empty() && !s.name.is_empty(),
        })
}

fn child_name(s: &SectionDoc) -> &'static str {
    s.name.rsplit_once('.').map_or(s.name, |(_, child)| child)
}

/// Every key valid in section `name`, as error messages list them: its enforced keys,
/// then its enforced sub-tables. Keys refused as "not supported yet" are left out.
pub(crate) fn valid_keys(name: &str) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = section(name)
        .filter(|s| section_supported(s))
        .map(|s| {
            s.keys
                .iter()
                .filter(|k| k.not_yet.is_none())
                .map(|k| k.key)
                .collect()
        })
        .unwrap_or_default();
    keys.extend(
        children(name)
            .filter(|s| section_supported(s))
            .map(child_name),
    );
    keys
}

/// Every documented key path (`listen.https`, `redact.rule.pattern`), in reference order,
/// with whether the running binary enforces it.
fn key_paths() -> impl Iterator<Item = (String, bool)> {
    SECTIONS.iter().flat_map(|s| {
        let supported = section_supported(s);
        s.keys
            .iter()
            .map(move |k| (key_path(s, k), supported && k.not_yet.is_none()))
    })
}

/// Every documented key the running binary enforces, as a dotted path without indices:
/// `trusted_proxies`, `listen.https`, `route.verify`, `redact.rule.pattern`, ... (`route`,
/// `redact.rule` and `egress.target` are arrays of tables). These are the keys of the
/// README's configuration reference.
pub fn supported_keys() -> Vec<String> {
    key_paths()
        .filter_map(|(path, supported)| supported.then_some(path))
        .collect()
}

/// Every documented key the running binary does not enforce yet (`upstream.fallback`,
/// `egress.listen`, `egress.target.url`, ...): a config that sets one of them, or that
/// has a table they belong to, is refused with [`ErrorKind::NotSupported`].
///
/// [`ErrorKind::NotSupported`]: crate::ErrorKind::NotSupported
pub fn unsupported_keys() -> Vec<String> {
    key_paths()
        .filter_map(|(path, supported)| (!supported).then_some(path))
        .collect()
}

/// What `parse` refuses before anything else: each outermost unsupported section
/// (`egress`) or key in an enforced section (`upstream.fallback`), with why.
pub(crate) fn refused() -> impl Iterator<Item = (String, NotYet)> {
    SECTIONS.iter().flat_map(|s| {
        let own = s
            .not_yet
            .filter(|_| parent_supported(s))
            .map(|n| (s.name.to_owned(), n));
        let keys = s
            .keys
            .iter()
            .filter(move |_| section_supported(s))
            .filter_map(move |k| k.not_yet.map(|n| (key_path(s, k), n)));
        own.into_iter().chain(keys)
    })
}

/// How a section is written: `[listen]`, `[[route]]`, or `the top level`.
pub(crate) fn heading(name: &str) -> String {
    match section(name) {
        _ if name.is_empty() => "the top level".to_owned(),
        Some(s) if s.array => format!("[[{name}]]"),
        _ => format!("[{name}]"),
    }
}

/// What a value at `path` (indices dropped) should look like, for type errors.
pub(crate) fn expected_type(path: &str) -> String {
    if let Some(s) = section(path) {
        return if s.array {
            format!("one or more {} tables", heading(path))
        } else {
            format!("a table {}", heading(path))
        };
    }
    let Some(doc) = key_doc(path) else {
        return "a different type".to_owned();
    };
    match doc.ty {
        "address" => "a string \"ip:port\", e.g. \"0.0.0.0:443\"".to_owned(),
        "duration" => "a string duration such as \"500ms\", \"30s\", \"1h\", \"30d\"".to_owned(),
        "size" => "a size such as \"16KiB\", \"10MiB\", or an integer number of bytes".to_owned(),
        "string" | "path" | "URL" | "secret" => "a string".to_owned(),
        "secret | [secret]" => "a string or an array of strings".to_owned(),
        "bool" => "true or false".to_owned(),
        "integer" => "an integer".to_owned(),
        "[integer]" => "an array of integers, e.g. [443]".to_owned(),
        "table" => "an inline table of strings, e.g. { Name = \"value\" }".to_owned(),
        ty if ty.starts_with('[') => format!("an array of strings ({ty})"),
        ty => format!("a string, one of {ty}"),
    }
}

/// The README's configuration reference: a Markdown table per section (key, type,
/// default, meaning).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "## Configuration reference\n\n\
         Durations are strings such as `\"500ms\"`, `\"30s\"`, `\"1h\"`, `\"30d\"`. Sizes are strings such as \
         `\"16KiB\"`, `\"10MiB\"` (`KB`/`MB` are powers of 1000) or an integer number of bytes. \
         A *secret* is `\"${env:NAME}\"` (an environment variable), `\"${file:/run/secrets/x}\"` (a file that \
         group and others must not be able to read, except a root-owned file that only its group may read when clawveil \
         runs with that group, as Kubernetes mounts Secrets with `fsGroup`; one trailing newline is trimmed), text containing them \
         (`\"Bearer ${file:/run/secrets/key}\"`), or a literal. The metrics tokens, the routes' DingTalk secrets and the egress targets' \
         `inject_headers` and `client_token` are re-read on SIGHUP, and when their file changes (checked every \
         `tls.watch_interval`); the others (`egress.token`, `log.hash_key`, the `acme` secrets) are read at start. \
         `clawveil check` prints secrets masked. Relative paths are resolved against the current directory \
         of the process (as nginx resolves them against its prefix), not against the config file.\n",
    );
    let refused: Vec<String> = refused()
        .map(|(path, _)| match section(&path) {
            Some(_) => format!("`{}`", heading(&path)),
            None => format!("`{path}`"),
        })
        .collect();
    if !refused.is_empty() {
        out.push_str(&format!(
            "\nNot supported yet, and so refused at load rather than ignored: {}.\n",
            refused.join(", ")
        ));
    }
    for s in SECTIONS.iter().filter(|s| section_supported(s)) {
        let title = if s.name.is_empty() {
            "Top level".to_owned()
        } else {
            format!("`{}`", heading(s.name))
        };
        out.push_str(&format!(
            "\n### {title}\n\n{}\n\n| key | type | default | meaning |\n|---|---|---|---|\n",
            s.about
        ));
        for key in s.keys.iter().filter(|k| k.not_yet.is_none()) {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                key.key,
                cell(key.ty),
                cell(key.default),
                cell(key.doc)
            ));
        }
    }
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::RawConfig;

    /// serde's list of fields for a section, read from its unknown-field message.
    fn serde_fields(section: &SectionDoc) -> Vec<String> {
        let mut src = String::new();
        if !section.name.is_empty() {
            let h = if section.array {
                format!("[[{}]]", section.name)
            } else {
                format!("[{}]", section.name)
            };
            src.push_str(&h);
            src.push('\n');
        }
        src.push_str("zz_not_a_key = 1\n");
        let err = toml::from_str::<RawConfig>(&src).unwrap_err();
        let msg = err.message().to_owned();
        let list = msg
            .split("expected ")
            .nth(1)
            .unwrap_or_else(|| panic!("{msg}"));
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    /// Every key and sub-table of section `name`, enforced or not.
    fn known_keys(name: &str) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = section(name)
            .map(|s| s.keys.iter().map(|k| k.key).collect())
            .unwrap_or_default();
        keys.extend(children(name).map(child_name));
        keys
    }

    #[test]
    fn reference_matches_the_raw_structs() {
        for s in SECTIONS {
            let mut from_serde = serde_fields(s);
            let mut documented: Vec<String> =
                known_keys(s.name).into_iter().map(str::to_owned).collect();
            from_serde.sort();
            documented.sort();
            assert_eq!(from_serde, documented, "section {:?}", s.name);
        }
    }

    #[test]
    fn markdown_has_a_row_per_supported_key_and_none_for_the_others() {
        let md = reference_markdown();
        for s in SECTIONS.iter().filter(|s| section_supported(s)) {
            for key in s.keys.iter().filter(|k| k.not_yet.is_none()) {
                assert!(md.contains(&format!("| `{}` |", key.key)), "{}", key.key);
            }
        }
        assert!(md.contains("### `[[route]]`") && md.contains("### `[listen]`"));
        assert!(md.contains("\\|"), "pipes in types are escaped");
        let egress_keys = [
            "| `inject_headers` |",
            "| `ports` | [integer] | `[443]` |",
            "| `plain_http` | bool | `false` |",
            "| `client_token` | secret |",
            "`openssl rand -hex 32`",
        ];
        if EGRESS_SUPPORTED {
            assert!(md.contains("### `[egress]`") && md.contains("### `[[egress.target]]`"));
            for row in egress_keys {
                assert!(md.contains(row), "{row}");
            }
            assert!(
                md.contains("refused at load rather than ignored: `upstream.fallback`."),
                "{md}"
            );
        } else {
            assert!(!md.contains("### `[egress]`") && !md.contains("### `[[egress.target]]`"));
            for row in &egress_keys[..4] {
                assert!(!md.contains(row), "{row}");
            }
            assert!(
                md.contains(
                    "refused at load rather than ignored: `upstream.fallback`, `[egress]`."
                ),
                "{md}"
            );
        }
        assert!(!md.contains("| `fallback` | URL | unset | A second upstream"));
    }

    #[test]
    fn supported_and_unsupported_keys_partition_the_reference() {
        let supported = supported_keys();
        let unsupported = unsupported_keys();
        assert_eq!(
            supported.len() + unsupported.len(),
            SECTIONS.iter().map(|s| s.keys.len()).sum::<usize>()
        );
        for key in [
            "trusted_proxies",
            "listen.https",
            "listen.server_names",
            "route.verify",
            "route.allowed_origins",
            "redact.rule.pattern",
            "limits.tunnel_idle_timeout",
        ] {
            assert!(supported.iter().any(|k| k == key), "{key}");
        }
        assert!(!supported.iter().any(|k| k == "upstream.fallback"));
        assert!(unsupported.iter().any(|k| k == "upstream.fallback"));
        let egress = [
            "egress.listen",
            "egress.allow",
            "egress.ports",
            "egress.plain_http",
            "egress.allow_cidrs",
            "egress.token",
            "egress.target.url",
            "egress.target.inject_headers",
            "egress.target.client_token",
        ];
        let (on, off) = if EGRESS_SUPPORTED {
            (&supported, &unsupported)
        } else {
            (&unsupported, &supported)
        };
        for key in egress {
            assert!(on.iter().any(|k| k == key), "{key}");
        }
        assert!(!off.iter().any(|k| k.starts_with("egress")), "{off:?}");
        assert!(unsupported
            .iter()
            .all(|k| k.starts_with("egress.") || k == "upstream.fallback"));
        let refused: Vec<String> = refused().map(|(path, _)| path).collect();
        if EGRESS_SUPPORTED {
            assert_eq!(refused, ["upstream.fallback"]);
        } else {
            assert_eq!(refused, ["upstream.fallback", "egress"]);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(
            valid_keys("listen"),
            ["https", "http", "metrics", "server_names"]
        );
        assert_eq!(
            valid_keys("upstream"),
            [
                "url",
                "connect_timeout",
                "response_timeout",
                "exposure_check",
                "require_loopback"
            ]
        );
        assert!(valid_keys("redact").contains(&"rule"));
        assert!(valid_keys("").contains(&"route"));
        if EGRESS_SUPPORTED {
            assert!(valid_keys("").contains(&"egress"));
            assert_eq!(
                valid_keys("egress"),
                [
                    "listen",
                    "allow",
                    "ports",
                    "plain_http",
                    "allow_cidrs",
                    "token",
                    "target"
                ]
            );
            assert!(valid_keys("egress.target").contains(&"client_token"));
        } else {
            assert!(!valid_keys("").contains(&"egress"));
            assert!(valid_keys("egress").is_empty() && valid_keys("egress.target").is_empty());
        }
        assert_eq!(
            expected_type("egress.ports"),
            "an array of integers, e.g. [443]"
        );
        assert!(expected_type("limits.max_body").contains("16KiB"));
        assert!(expected_type("route").contains("[[route]]"));
        assert_eq!(heading(""), "the top level");
    }
}
