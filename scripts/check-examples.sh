#!/usr/bin/env bash
# Validates the deployment material under examples/ (systemd, container, kubernetes,
# openclaw, nginx-migration.md): every proxy.toml is accepted by `clawveil check`, the
# systemd unit verifies and stays under an exposure score, the Containerfile follows the
# rules below, the Kubernetes manifests match the Kubernetes API schemas, and the keys
# the docs name exist. Prints one line per check and ends with "N passed, M failed";
# exits non-zero when anything failed.
#
#   bash scripts/check-examples.sh
#
# Needs cargo, python3, systemd-analyze and openssl; when run as root it installs what
# is missing (apt-get for systemd/openssl, pip for PyYAML and kubernetes-validate).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

K8S_VERSION=${K8S_VERSION:-1.33.0}          # schema version for kubernetes-validate
SECURITY_MAX=${SECURITY_MAX:-3.0}           # highest acceptable systemd exposure score

passed=0
failed=0
say() { printf '%s\n' "$*"; }

# check NAME COMMAND...: runs COMMAND, counts it, shows its output only when it fails.
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then
    passed=$((passed + 1))
    say "ok   - $name"
  else
    failed=$((failed + 1))
    say "FAIL - $name"
    printf '%s\n' "$out" | sed 's/^/       /'
  fi
}

# fails COMMAND...: succeeds when COMMAND fails (the negative self-tests: a broken input
# must be caught, or the check above it proves nothing).
fails() {
  if "$@"; then echo "expected a failure, got success"; return 1; fi
  return 0
}

# fails_with TEXT COMMAND...: succeeds when COMMAND fails and its output contains TEXT
# (failing for the reason the check is about, not any reason).
fails_with() {
  local want=$1; shift
  local out
  if out=$("$@" 2>&1); then echo "expected a failure, got success"; return 1; fi
  [[ $out == *"$want"* ]] || { printf 'failed, but without "%s":\n%s\n' "$want" "$out"; return 1; }
}

# --- tools -------------------------------------------------------------------------
need_apt=()
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v openssl >/dev/null || need_apt+=(openssl)
if ((${#need_apt[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    say "missing: ${need_apt[*]} (run as root to install them)"; exit 1
  fi
fi
if ! python3 -c 'import yaml' 2>/dev/null || ! command -v kubernetes-validate >/dev/null; then
  if [[ $(id -u) == 0 ]]; then
    python3 -m pip install -q --root-user-action=ignore pyyaml kubernetes-validate
  else
    python3 -m pip install -q --user pyyaml kubernetes-validate
    export PATH="$HOME/.local/bin:$PATH"
  fi
fi

# --- the binary ------------------------------------------------------------------------
say "building clawveil (cargo build --locked -p clawveil)"
cargo build --locked -q -p clawveil
BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/clawveil
[[ -x $BIN ]] || { say "no binary at $BIN"; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
HELPER=$TMP/helper.py

cat >"$HELPER" <<'PY'
"""Helpers for check-examples.sh; each subcommand exits non-zero with a reason."""
import json, os, re, secrets, shutil, string, subprocess, sys, tomllib
from pathlib import Path

def fail(msg):
    print(msg)
    sys.exit(1)

# ---------------------------------------------------------------------------------
# clawveil check on an example config, in a sandbox that holds every file it names.

ABS = r"/[A-Za-z0-9._/+-]+"

def walk(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v, prefix)
    else:
        yield prefix, node

def make_pem(sandbox):
    """One self-signed P-256 certificate and key, valid now."""
    crt, key = sandbox / "_gen.crt", sandbox / "_gen.key"
    if not crt.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                        "-subj", "/CN=bot.example.com",
                        "-addext", "subjectAltName=DNS:bot.example.com",
                        "-keyout", str(key), "-out", str(crt)],
                       check=True, capture_output=True)
    return crt.read_bytes(), key.read_bytes()

def secret_value(path):
    name = os.path.basename(path).lower()
    if "aes" in name:                      # DingTalk EncodingAESKey: 43 characters
        return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
    return secrets.token_hex(32)           # tokens (>= 16), storage_key (64 hex)

def check_config(src, bin_, sandbox, mode, extra, owner=None, prefix=()):
    """`clawveil check` on `src` with every file it names materialised in `sandbox`:
    secrets and keys get `mode`; with `owner` (uid, gid) the secret, key and certificate
    files get that owner and `mode` (a Kubernetes Secret volume), and `prefix` runs the
    binary (setpriv as the pod's user)."""
    src = Path(src)
    text = src.read_text()
    cfg = tomllib.loads(text)
    sandbox = Path(sandbox)
    sandbox.mkdir(parents=True, exist_ok=True)
    files = {}                              # absolute path -> kind
    envs = set()
    for key, value in walk(cfg):
        if not isinstance(value, str):
            continue
        for p in re.findall(r"\$\{file:(" + ABS + r")\}", value):
            files[p] = "secret"
        envs.update(re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", value))
        if value.startswith("/"):
            leaf = key.split(".")[-1]
            kind = {"cert": "cert", "key": "key", "ca_roots": "cert", "storage": "dir"}.get(leaf)
            if kind:
                files[value] = kind
    crt, key = make_pem(sandbox)
    for p, kind in files.items():
        dst = sandbox / "root" / p.lstrip("/")
        if kind == "dir":
            dst.mkdir(parents=True, exist_ok=True)
            os.chmod(dst, 0o700)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if kind == "secret":
            dst.write_text(secret_value(p) + "\n")
        elif kind == "cert":
            dst.write_bytes(crt)
        else:
            dst.write_bytes(key)
        os.chmod(dst, int(mode, 8) if kind in ("secret", "key") or owner else 0o644)
        if owner:
            os.chown(dst, *owner)
    # Rewrite every absolute path that was materialised, longest first, in one pass.
    if files:
        pat = re.compile("|".join(re.escape(p) for p in sorted(files, key=len, reverse=True)))
        text = pat.sub(lambda m: str(sandbox / "root") + m.group(0), text)
    cfgfile = sandbox / "proxy.toml"
    cfgfile.write_text(text)
    env = dict(os.environ)
    for name in envs:
        env[name] = secrets.token_hex(32)
    r = subprocess.run([*prefix, bin_, "check", "--config", str(cfgfile), *extra],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        fail(f"clawveil check {src} (files: {len(files)}, mode {mode}, owner {owner}, "
             f"as {' '.join(prefix) or 'this user'}, args {extra}) "
             f"exited {r.returncode}:\n{r.stdout}{r.stderr}")
    print(r.stdout[-400:])

def check_config_as_pod(src, bin_, sandbox, mode, deployment, extra):
    """check_config as the Deployment runs clawveil: its Secret files owned by root with
    the pod's fsGroup as group (what the kubelet does), the binary run with the clawveil
    container's runAsUser/runAsGroup and the fsGroup as supplementary group. Needs root."""
    import yaml
    dep = yaml.safe_load(Path(deployment).read_text())
    spec = dep["spec"]["template"]["spec"]
    cv = next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "clawveil")
    fs_group = spec["securityContext"]["fsGroup"]
    uid, gid = cv["securityContext"]["runAsUser"], cv["securityContext"]["runAsGroup"]
    # The user must reach the binary and the sandbox.
    own_bin = Path(sandbox).parent / "clawveil-bin"
    if not own_bin.exists():
        shutil.copy(bin_, own_bin)
        os.chmod(own_bin, 0o755)
    os.chmod(Path(sandbox).parent, 0o711)
    prefix = ["setpriv", f"--reuid={uid}", f"--regid={gid}", f"--groups={fs_group}", "--"]
    check_config(src, str(own_bin), sandbox, mode, extra, owner=(0, fs_group), prefix=prefix)

# ---------------------------------------------------------------------------------
# The keys clawveil knows: the generated reference block of README.md.

def reference_keys(readme):
    text = Path(readme).read_text()
    m = re.search(r"<!-- BEGIN CONFIG REFERENCE -->(.*)<!-- END CONFIG REFERENCE -->", text, re.S)
    if not m:
        fail(f"{readme}: no generated configuration reference")
    keys, section = set(), None
    unsupported = set()
    for line in m.group(1).splitlines():
        h = re.match(r"###\s+(.*)", line)
        if h:
            t = h.group(1)
            s = re.match(r"`\[\[?([a-z_.]+)\]\]?`", t)
            section = s.group(1) if s else ""           # "Top level"
            continue
        row = re.match(r"\|\s*`([a-z_]+)`\s*\|", line)
        if row and section is not None:
            keys.add(f"{section}.{row.group(1)}" if section else row.group(1))
        if line.startswith("Not supported yet"):
            unsupported.update(re.findall(r"`([a-z_.]+)`", line))
    if len(keys) < 40:
        fail(f"only {len(keys)} keys parsed from the reference; has its format changed?")
    return keys, unsupported

def doc_keys(md, readme):
    keys, unsupported = reference_keys(readme)
    sections = {k.rsplit(".", 1)[0] for k in keys if "." in k}
    text = Path(md).read_text()
    bad, seen = [], set()
    for span in re.findall(r"`([^`\n]+)`", text):
        span = span.strip()
        m = re.match(r"^([a-z_]+(?:\.[a-z_]+)*)\s*(=|$)", span)
        if not m:
            sec = re.match(r"^\[\[?([a-z_.]+)\]\]?$", span)
            if sec and sec.group(1) not in sections:
                bad.append(f"[{sec.group(1)}] is not a section")
            continue
        name = m.group(1)
        if "." not in name and m.group(2) != "=":
            continue                                      # a plain word
        if name.rsplit(".", 1)[-1] in {"toml", "md", "pem", "json", "yaml", "service", "conf", "log", "key", "crt"} \
                and name not in keys:
            continue                                      # a file name
        seen.add(name)
        if name in unsupported:
            bad.append(f"{name} is not supported yet")
        elif name not in keys:
            bad.append(f"{name} is not a clawveil key")
    if bad:
        fail("\n".join(sorted(set(bad))))
    if len(seen) < 20:
        fail(f"only {len(seen)} keys found in {md}; is the table still there?")
    print(f"{len(seen)} keys, all in the reference")

def doc_covers(md, *needles):
    text = Path(md).read_text()
    missing = [n for n in needles if n not in text]
    if missing:
        fail("not covered: " + ", ".join(missing))

def extract_toml(md, outdir):
    blocks = re.findall(r"```toml\n(.*?)```", Path(md).read_text(), re.S)
    full = [b for b in blocks if "[listen]" in b]
    if not full:
        fail(f"{md}: no complete ```toml block")
    for i, b in enumerate(full):
        Path(outdir, f"block{i}.toml").write_text(b)
    print(len(full))

# ---------------------------------------------------------------------------------
# systemd: credentials the config reads are the ones the unit loads.

def unit_creds(toml_path, *units):
    loaded, unitname = set(), None
    for u in units:
        for line in Path(u).read_text().splitlines():
            m = re.match(r"\s*LoadCredential=([^:]+):", line)
            if m:
                loaded.add(m.group(1))
        if u.endswith(".service"):
            unitname = os.path.basename(u)
    used = set()
    for p in re.findall(r"\$\{file:(" + ABS + r")\}", Path(toml_path).read_text()):
        m = re.match(r"/run/credentials/([^/]+)/(.+)$", p)
        if not m:
            fail(f"{toml_path}: {p} is not a credential path")
        if m.group(1) != unitname:
            fail(f"{toml_path}: {p} names unit {m.group(1)}, the unit is {unitname}")
        used.add(m.group(2))
    missing = used - loaded
    if missing:
        fail(f"{toml_path} reads credentials the unit does not load: {sorted(missing)}")
    print(f"reads {sorted(used)}; unit loads {sorted(loaded)}")

# ---------------------------------------------------------------------------------
# Containerfile rules.

def containerfile(path, toml_path):
    lines, cur = [], ""
    for raw in Path(path).read_text().splitlines():
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        cur += s[:-1] + " " if s.endswith("\\") else s
        if not s.endswith("\\"):
            lines.append(cur)
            cur = ""
    froms = [l for l in lines if re.match(r"FROM\s", l, re.I)]
    errs = []
    if len(froms) < 2:
        errs.append("not a multi-stage build (fewer than two FROM)")
    for f in froms:
        if not re.search(r"\sAS\s+\S+\s*$", f, re.I):
            errs.append(f"stage without a name: {f}")
        image = f.split()[1]
        if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
            errs.append(f"untagged or latest base image: {image}")
    for l in lines:
        if re.match(r"ADD\s+.*https?://", l, re.I):
            errs.append(f"ADD of a URL: {l}")
        if re.match(r"(RUN|ADD|COPY)\s.*\s--allow-insecure-permissions", l):
            errs.append(f"insecure flag baked in: {l}")
    last = lines.index(froms[-1]) if froms else 0
    users = [l.split()[1] for l in lines[last:] if re.match(r"USER\s", l, re.I)]
    if not users:
        errs.append("no USER in the final stage")
    elif users[-1].split(":")[0] in ("0", "root"):
        errs.append(f"final USER is root: {users[-1]}")
    if not any(re.match(r"ENTRYPOINT\s+\[", l) for l in lines[last:]):
        errs.append("no exec-form ENTRYPOINT in the final stage")
    exposed = set()
    for l in lines[last:]:
        if re.match(r"EXPOSE\s", l, re.I):
            exposed.update(int(p.split("/")[0]) for p in l.split()[1:])
    cfg = tomllib.loads(Path(toml_path).read_text())
    ports = {int(a.rsplit(":", 1)[1]) for a in cfg.get("listen", {}).values() if isinstance(a, str) and ":" in a}
    if ports != exposed:
        errs.append(f"EXPOSE {sorted(exposed)} != listen ports {sorted(ports)} of {toml_path}")
    if errs:
        fail("\n".join(errs))
    print(f"{len(froms)} stages, USER {users[-1]}, EXPOSE {sorted(exposed)}")

# ---------------------------------------------------------------------------------
# Kubernetes: custom resources (no schema in kubernetes-validate) and consistency.

def load_docs(*paths):
    import yaml
    docs = []
    for p in paths:
        for d in yaml.safe_load_all(Path(p).read_text()):
            if d:
                docs.append((p, d))
    return docs

def need(d, path, where):
    cur = d
    for part in path.split("."):
        if isinstance(cur, list):
            cur = cur[0] if cur else None
        if not isinstance(cur, dict) or part not in cur:
            fail(f"{where}: missing {path}")
        cur = cur[part]
    return cur

def crds(*paths):
    rules = {
        ("cert-manager.io/v1", "Certificate"): ["metadata.name", "spec.secretName", "spec.issuerRef.name",
                                               "spec.issuerRef.kind", "spec.dnsNames"],
        ("monitoring.coreos.com/v1", "ServiceMonitor"): ["metadata.name", "spec.selector.matchLabels",
                                                         "spec.endpoints.port",
                                                         "spec.endpoints.authorization.credentials.name",
                                                         "spec.endpoints.authorization.credentials.key"],
    }
    n = 0
    for p, d in load_docs(*paths):
        key = (d.get("apiVersion"), d.get("kind"))
        if key not in rules:
            fail(f"{p}: unexpected {key}")
        for r in rules[key]:
            need(d, r, f"{p} {key[1]}")
        if key[1] == "Certificate":
            if d["spec"]["issuerRef"]["kind"] not in ("Issuer", "ClusterIssuer"):
                fail(f"{p}: issuerRef.kind")
            if d["spec"].get("privateKey", {}).get("algorithm", "RSA") not in ("RSA", "ECDSA", "Ed25519"):
                fail(f"{p}: privateKey.algorithm")
        n += 1
    print(f"{n} custom resources")

def k8s_consistency(dirpath):
    d = Path(dirpath)
    import yaml
    kus = yaml.safe_load((d / "kustomization.yaml").read_text())
    for r in kus.get("resources", []):
        if not (d / r).exists():
            fail(f"kustomization: {r} missing")
    for g in kus.get("configMapGenerator", []):
        for f in g.get("files", []):
            if not (d / f.split("=")[-1]).exists():
                fail(f"kustomization: {f} missing")
    docs = [doc for _, doc in load_docs(*[d / r for r in kus["resources"]])]
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    cfg = tomllib.loads((d / "proxy.toml").read_text())
    dep = by_kind["Deployment"][0]
    spec = dep["spec"]["template"]["spec"]
    conts = spec.get("initContainers", []) + spec["containers"]
    cv = next(c for c in conts if c["name"] == "clawveil")
    errs = []
    # ports
    listen = cfg["listen"]
    want = {n: int(listen[k].rsplit(":", 1)[1]) for n, k in (("https", "https"), ("http", "http"), ("metrics", "metrics"))}
    have = {p["name"]: p["containerPort"] for p in cv["ports"]}
    if want != have:
        errs.append(f"container ports {have} != listen {want}")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        pr = cv.get(probe, {}).get("httpGet", {})
        if pr and pr.get("port") not in ("metrics", want["metrics"]):
            errs.append(f"{probe} not on the metrics port")
    if cv["livenessProbe"]["httpGet"]["path"] != "/healthz" or cv["readinessProbe"]["httpGet"]["path"] != "/readyz":
        errs.append("probes must be /healthz (liveness) and /readyz (readiness)")
    # config path
    args = cv.get("args", [])
    conf = args[args.index("--config") + 1]
    mounts = {m["mountPath"]: m["name"] for m in cv["volumeMounts"]}
    vols = {v["name"]: v for v in spec["volumes"]}
    def mounted(path):
        for mp, name in mounts.items():
            if path.startswith(mp.rstrip("/") + "/"):
                return path[len(mp.rstrip("/")) + 1:], vols[name]
        errs.append(f"{path} is not under any mount of the clawveil container")
        return None, None
    rel, vol = mounted(conf)
    if vol is not None and (vol.get("configMap", {}).get("name") != kus["configMapGenerator"][0]["name"] or rel != "proxy.toml"):
        errs.append(f"--config {conf} is not the generated ConfigMap's proxy.toml")
    def items(vol):
        out = set()
        if "secret" in vol:
            out.update(i["path"] for i in vol["secret"].get("items", []))
        for src in vol.get("projected", {}).get("sources", []):
            out.update(i["path"] for i in src.get("secret", {}).get("items", []))
        return out
    paths = [cfg["tls"]["cert"], cfg["tls"]["key"]]
    paths += re.findall(r"\$\{file:(" + ABS + r")\}", (d / "proxy.toml").read_text())
    for p in paths:
        rel, vol = mounted(p)
        if vol is not None and rel not in items(vol):
            errs.append(f"{p}: no such item in volume {vol['name']}")
    # no subPath on the TLS mount (renewals would never arrive)
    if any("subPath" in m for m in cv["volumeMounts"]):
        errs.append("subPath mounts do not receive updates")
    # hardening
    for c in conts:
        sc = c.get("securityContext", {})
        if not (sc.get("runAsNonRoot") and sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                and sc.get("capabilities", {}).get("drop") == ["ALL"]):
            errs.append(f"container {c['name']}: securityContext not hardened")
    if spec.get("securityContext", {}).get("seccompProfile", {}).get("type") != "RuntimeDefault":
        errs.append("pod seccompProfile is not RuntimeDefault")
    # services, ServiceMonitor, NetworkPolicy
    svc_ports = {p["name"] for s in by_kind["Service"] for p in s["spec"]["ports"]}
    for sm in by_kind["ServiceMonitor"]:
        for ep in sm["spec"]["endpoints"]:
            if ep["port"] not in svc_ports:
                errs.append(f"ServiceMonitor port {ep['port']} is no Service port")
    np_ports = {p["port"] for np in by_kind["NetworkPolicy"] for r in np["spec"]["ingress"] for p in r.get("ports", [])}
    if not set(want.values()) <= np_ports:
        errs.append(f"NetworkPolicy ingress ports {sorted(np_ports)} miss {sorted(set(want.values()) - np_ports)}")
    cert = by_kind["Certificate"][0]
    if vols["tls"]["secret"]["secretName"] != cert["spec"]["secretName"]:
        errs.append("the tls volume is not the Certificate's Secret")
    if errs:
        fail("\n".join(errs))
    print("ports, probes, mounts, volumes, Service/ServiceMonitor/NetworkPolicy agree with proxy.toml")

def deployment_args(dirpath):
    """The clawveil container's flags other than the subcommand and --config."""
    import yaml
    dep = yaml.safe_load(Path(dirpath, "deployment.yaml").read_text())
    spec = dep["spec"]["template"]["spec"]
    cv = next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "clawveil")
    args = list(cv["args"])
    i = args.index("--config")
    del args[i:i + 2]
    args.remove("run")
    print(" ".join(args))

# ---------------------------------------------------------------------------------
# OpenClaw: its settings point at the egress listener and target of proxy.toml.

def openclaw(json_path, toml_path):
    oc = json.loads(Path(json_path).read_text())
    cfg = tomllib.loads(Path(toml_path).read_text())
    listen = cfg["egress"]["listen"]
    errs = []
    if oc["proxy"].get("enabled") is not True:
        errs.append("proxy.enabled is not true")
    if oc["proxy"]["proxyUrl"] != f"http://{listen}":
        errs.append(f"proxy.proxyUrl {oc['proxy']['proxyUrl']} != http://{listen}")
    targets = {t["name"]: t for t in cfg["egress"]["target"]}
    for pid, prov in oc["models"]["providers"].items():
        m = re.match(r"http://([^/]+)/([^/]+)(/.*)?$", prov["baseUrl"])
        if not m or m.group(1) != listen or m.group(2) not in targets:
            errs.append(f"models.providers.{pid}.baseUrl {prov['baseUrl']} is not an egress target on {listen}")
            continue
        t = targets[m.group(2)]
        if "client_token" in t and not prov.get("apiKey"):
            errs.append(f"target {t['name']} wants a client_token; provider {pid} sends no apiKey")
        for model in prov.get("models", []):
            if t.get("models") and model["id"] not in t["models"]:
                errs.append(f"model {model['id']} is not in target {t['name']}'s models (metric label 'other')")
    up = cfg["upstream"]["url"]
    if not up.endswith(f":{oc['gateway']['port']}"):
        errs.append(f"upstream.url {up} is not the gateway port {oc['gateway']['port']}")
    if oc["gateway"].get("bind") != "loopback":
        errs.append("gateway.bind is not loopback")
    origins = oc["gateway"].get("controlUi", {}).get("allowedOrigins", [])
    for r in cfg.get("route", []):
        for o in r.get("allowed_origins", []):
            if o not in origins:
                errs.append(f"route {r['name']} allows origin {o}, the gateway does not")
    if errs:
        fail("\n".join(errs))
    print("proxyUrl, baseUrl, models, gateway port and origins agree")

if __name__ == "__main__":
    cmd, *a = sys.argv[1:]
    if cmd == "check-config":
        src, bin_, sandbox, mode, *extra = a
        check_config(src, bin_, sandbox, mode, extra)
    elif cmd == "check-config-as-pod":
        src, bin_, sandbox, mode, deployment, *extra = a
        check_config_as_pod(src, bin_, sandbox, mode, deployment, extra)
    else:
        globals()[cmd.replace("-", "_")](*a)
PY
py() { python3 "$HELPER" "$@"; }

# --- every proxy.toml accepted by clawveil check ---------------------------------------
n=0
while IFS= read -r f; do
  n=$((n + 1))
  check "clawveil check $f" py check-config "$f" "$BIN" "$TMP/cfg$n" 0600
done < <(find examples -name proxy.toml -not -path '*/prometheus/*' -not -path '*/grafana/*' | sort)

# The Kubernetes config as the pod sees it: the Secret volumes' files owned by root with
# group fsGroup, mode 0440 (what the kubelet makes of defaultMode 0400), read by the
# Deployment's user and groups, with the Deployment's own flags, which must not include
# --allow-insecure-permissions: root:fsGroup 0440 is accepted without it. A 0444 file
# (readable by others) is still refused.
K8S_ARGS=$(py deployment-args examples/kubernetes)
check "the Deployment runs clawveil without --allow-insecure-permissions ('$K8S_ARGS')" \
  bash -c "[[ ' $K8S_ARGS ' != *' --allow-insecure-permissions '* ]]"
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
  # shellcheck disable=SC2086
  check "clawveil check examples/kubernetes/proxy.toml as the pod's user, Secret files root:fsGroup 0440" \
    py check-config-as-pod examples/kubernetes/proxy.toml "$BIN" "$TMP/k8s0440" 0440 examples/kubernetes/deployment.yaml $K8S_ARGS
  # shellcheck disable=SC2086
  check "... and refuses them at root:fsGroup 0444 (readable by others)" \
    fails_with "is readable by group or others (mode 0444)" \
    py check-config-as-pod examples/kubernetes/proxy.toml "$BIN" "$TMP/k8s0444" 0444 examples/kubernetes/deployment.yaml $K8S_ARGS
else
  say "skip - the Kubernetes Secret volume layout checks (need root for chown and setpriv)"
fi

# nginx-migration.md: its complete proxy.toml block(s).
mkdir -p "$TMP/md"
py extract-toml examples/nginx-migration.md "$TMP/md" >/dev/null
for f in "$TMP"/md/*.toml; do
  check "clawveil check nginx-migration.md $(basename "$f")" py check-config "$f" "$BIN" "$TMP/md-$(basename "$f" .toml)" 0600
done

# --- systemd ---------------------------------------------------------------------------
UNIT=examples/systemd/clawveil.service
verify_unit() {   # verify_unit FILE: systemd-analyze verify with the built binary; any message fails
  local dir; dir=$(mktemp -d "$TMP/unit.XXXX")
  sed "s#^ExecStart=/usr/local/bin/clawveil #ExecStart=$BIN #" "$1" >"$dir/clawveil.service"
  grep -q "^ExecStart=$BIN " "$dir/clawveil.service" || { echo "ExecStart not rewritten"; return 1; }
  local out
  out=$(cd "$dir" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify ./clawveil.service 2>&1) || { echo "$out"; return 1; }
  [[ -z $out ]] || { echo "$out"; return 1; }
}
check "systemd-analyze verify $UNIT" verify_unit "$UNIT"
sed 's/^ProtectSystem=strict/ProtectSystem=strickt/' "$UNIT" >"$TMP/broken.service"
check "systemd-analyze verify catches a broken unit" fails verify_unit "$TMP/broken.service"
check "systemd-analyze verify $UNIT + openclaw drop-in" bash -c "
  d=\$(mktemp -d '$TMP/dropin.XXXX'); cp '$UNIT' \"\$d/clawveil.service\"
  sed -i 's#^ExecStart=/usr/local/bin/clawveil #ExecStart=$BIN #' \"\$d/clawveil.service\"
  mkdir \"\$d/clawveil.service.d\"; cp examples/openclaw/clawveil.service.d/openclaw.conf \"\$d/clawveil.service.d/\"
  out=\$(cd \"\$d\" && systemd-analyze verify ./clawveil.service 2>&1) && [ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }"

security_score() {
  local out score
  out=$(systemd-analyze security --offline=true --no-pager "$UNIT" 2>&1) || { echo "$out"; return 1; }
  score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [[ -n $score ]] || { echo "$out"; return 1; }
  say "systemd-analyze security: $(printf '%s\n' "$out" | grep 'Overall exposure' | sed 's/.*: //')" >&3
  python3 -c "import sys; sys.exit(0 if float('$score') <= float('$SECURITY_MAX') else 1)" \
    || { echo "exposure $score > $SECURITY_MAX"; printf '%s\n' "$out" | grep '✗'; return 1; }
}
exec 3>&1
check "systemd-analyze security $UNIT <= $SECURITY_MAX" security_score
check "systemd credentials: examples/systemd/proxy.toml reads only loaded ones" \
  py unit-creds examples/systemd/proxy.toml "$UNIT"
check "systemd credentials: examples/openclaw/proxy.toml reads only loaded ones" \
  py unit-creds examples/openclaw/proxy.toml "$UNIT" examples/openclaw/clawveil.service.d/openclaw.conf
check "unit essentials (DynamicUser, capability, StateDirectory, ExecReload, Restart)" bash -c "
  for k in 'DynamicUser=yes' 'AmbientCapabilities=CAP_NET_BIND_SERVICE' 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' \
           'ProtectSystem=strict' 'StateDirectory=clawveil' 'NoNewPrivileges=yes' 'PrivateTmp=yes' \
           'ExecReload=/bin/kill -HUP \$MAINPID' 'Restart=on-failure' 'UMask=0077' \
           'ExecStart=/usr/local/bin/clawveil run --config /etc/clawveil/proxy.toml'; do
    grep -qxF \"\$k\" '$UNIT' || { echo \"missing: \$k\"; exit 1; }
  done"

# --- container ---------------------------------------------------------------------------
check "Containerfile lint" py containerfile examples/container/Containerfile examples/container/proxy.toml
sed 's/^USER .*/USER root/' examples/container/Containerfile >"$TMP/Containerfile.root"
check "the Containerfile lint catches a root USER" \
  fails py containerfile "$TMP/Containerfile.root" examples/container/proxy.toml
check "Containerfile CMD matches the CLI" bash -c "
  grep -q '^CMD \[\"run\", \"--config\", \"/etc/clawveil/proxy.toml\"\]' examples/container/Containerfile &&
  '$BIN' run --help | grep -q -- '--config'"

# --- kubernetes ----------------------------------------------------------------------------
for f in deployment service networkpolicy; do
  check "kubernetes-validate --strict ($K8S_VERSION) examples/kubernetes/$f.yaml" \
    kubernetes-validate --strict --quiet -k "$K8S_VERSION" "examples/kubernetes/$f.yaml"
done
check "custom resources (Certificate, ServiceMonitor): apiVersion, kind, required fields" \
  py crds examples/kubernetes/certificate.yaml examples/kubernetes/servicemonitor.yaml
check "kubernetes manifests agree with examples/kubernetes/proxy.toml" py k8s-consistency examples/kubernetes
sed 's/readOnlyRootFilesystem/readOnlyRootFilesytem/' examples/kubernetes/deployment.yaml >"$TMP/bad-deployment.yaml"
check "kubernetes-validate catches a misspelt field" \
  fails kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$TMP/bad-deployment.yaml"

# --- docs --------------------------------------------------------------------------------
check "nginx-migration.md names only existing keys" py doc-keys examples/nginx-migration.md README.md
printf '| x | `listen.httpz = "x"` | |\n' >"$TMP/bad.md"
cat examples/nginx-migration.md >>"$TMP/bad.md"
check "the key check catches an unknown key" fails py doc-keys "$TMP/bad.md" README.md
check "nginx-migration.md covers the usual directives" py doc-covers examples/nginx-migration.md \
  'listen 443 ssl' ssl_certificate ssl_certificate_key proxy_pass X-Forwarded-Proto ssl_protocols \
  client_max_body_size proxy_read_timeout access_log 'return 301' \
  'Fail closed' 'Logs without content' 'Metrics' 'DingTalk callback verification' 'The way out'
check "openclaw.json agrees with examples/openclaw/proxy.toml" py openclaw examples/openclaw/openclaw.json examples/openclaw/proxy.toml

say ""
say "$passed passed, $failed failed"
[[ $failed == 0 ]]
