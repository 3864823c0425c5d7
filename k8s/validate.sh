#!/usr/bin/env bash
# Renders every overlay under k8s/overlays with `kubectl kustomize` and checks
# each object twice:
#   1. kubernetes-validate --strict against the Kubernetes OpenAPI schemas
#      (unknown fields, wrong types, missing required fields);
#   2. popug's own rules (policy check below): no credentials in ConfigMaps,
#      credentials only from Secrets, every referenced ConfigMap/Secret
#      present (dev) or documented (prod), hardened pods, a Service and a
#      PodDisruptionBudget per service, scrape annotations.
# Which variables, ports and probes each binary really uses is checked
# against the binaries themselves by `popug/tests/k8s.rs`.
# k8s/monitoring is rendered and checked too (see the end).
# Exits non-zero on any problem.
#
#   k8s/validate.sh                 # Kubernetes 1.30 schemas
#   K8S_VERSION=1.32.0 k8s/validate.sh
set -euo pipefail
cd "$(dirname "$0")"

K8S_VERSION="${K8S_VERSION:-1.30.0}"

if ! command -v kubernetes-validate >/dev/null 2>&1; then
  pip install --quiet kubernetes-validate
  pyenv rehash 2>/dev/null || true
  hash -r
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=0
for overlay in overlays/*/; do
  name="$(basename "$overlay")"
  rendered="$work/$name.yaml"
  echo "==> $name: render"
  if ! kubectl kustomize "$overlay" >"$rendered"; then
    echo "FAIL $name: kubectl kustomize failed" >&2
    failed=1
    continue
  fi

  echo "==> $name: kubernetes-validate --strict -k $K8S_VERSION"
  # --quiet prints only problems; a WARN (e.g. an unknown kind) exits 0, so
  # any output at all counts as a failure.
  status=0
  report="$(kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$rendered" 2>&1)" || status=$?
  if [[ $status -ne 0 || -n "$report" ]]; then
    printf '%s\n' "$report" >&2
    echo "FAIL $name: schema validation" >&2
    failed=1
  fi

  echo "==> $name: policy"
  if ! python3 - "$name" "$rendered" <<'PY'; then
import re
import sys

import yaml

overlay, path = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
problems = []


def problem(message):
    problems.append(message)


SERVICES = ("auth-svc", "tracker-svc", "billing-svc", "analytics-svc")
# Values that may only come from a Secret.
SENSITIVE = re.compile(r"PASSWORD|_DATABASE_URL$|^POPUG_POSTGRES_URL$|^POPUG_AMQP_URL$|^POPUG_SMTP_URL$")
# Secrets operators create for overlays that do not generate them (README.md).
EXTERNAL_SECRETS = {"popug-postgres", "popug-rabbitmq", "popug-admin", "popug-signing-keys", "popug-smtp",
                    "popug-amqp-auth", "popug-amqp-tracker", "popug-amqp-billing", "popug-amqp-analytics"}
SELF_CONTAINED = overlay == "dev"

by_kind = {}
for doc in docs:
    by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
configmaps = by_kind.get("ConfigMap", {})
secrets = by_kind.get("Secret", {})
services = by_kind.get("Service", {})
pdbs = by_kind.get("PodDisruptionBudget", {})

# 1. No credentials in ConfigMaps, neither by key nor by value.
BAD_KEY = re.compile(r"PASSW|SECRET|PRIVATE|PEM|_KEY$|_TOKEN$|SMTP_URL|POSTGRES_URL|AMQP_URL|DATABASE_URL", re.I)
BAD_VALUE = re.compile(r"PRIVATE KEY|BEGIN |password|[a-z][a-z0-9+.-]*://[^/@\s:]+:[^/@\s]+@", re.I)
for name, cm in configmaps.items():
    for key, value in {**cm.get("data", {}), **cm.get("binaryData", {})}.items():
        if BAD_KEY.search(key) or BAD_VALUE.search(str(value)):
            problem(f"ConfigMap {name}: {key} looks like a credential; use a Secret")


def secret_exists(name):
    if name in secrets:
        return True
    if not SELF_CONTAINED and name in EXTERNAL_SECRETS:
        return True
    problem(f"Secret {name} is referenced but neither rendered nor documented")
    return False


def check_pod(kind, name, pod):
    if pod.get("automountServiceAccountToken") is not False:
        problem(f"{kind} {name}: automountServiceAccountToken must be false")
    if (pod.get("securityContext", {}).get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problem(f"{kind} {name}: pod seccompProfile must be RuntimeDefault")
    for container in pod.get("initContainers", []) + pod["containers"]:
        sc = container.get("securityContext", {})
        where = f"{kind} {name} container {container['name']}"
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(f"{where}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problem(f"{where}: readOnlyRootFilesystem must be true")
        if sc.get("runAsNonRoot", pod.get("securityContext", {}).get("runAsNonRoot")) is not True:
            problem(f"{where}: runAsNonRoot must be true")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            problem(f"{where}: capabilities must drop ALL")
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(resources.get(part, {})):
                problem(f"{where}: resources.{part} needs cpu and memory")
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref and secret_exists(ref["name"]) and ref["name"] in secrets:
                if ref["key"] not in secrets[ref["name"]].get("data", {}):
                    problem(f"{where}: Secret {ref['name']} has no key {ref['key']}")
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            secret_exists(volume["secret"]["secretName"])
        if "configMap" in volume and volume["configMap"]["name"] not in configmaps:
            problem(f"{kind} {name}: ConfigMap {volume['configMap']['name']} is not rendered")


for kind in ("StatefulSet", "Deployment"):
    for name, obj in by_kind.get(kind, {}).items():
        check_pod(kind, name, obj["spec"]["template"]["spec"])

# 2. The four services: env names, ports, probes, Service, PDB, scraping.
deployments = by_kind.get("Deployment", {})
WEB = "web-svc"
if set(deployments) != set(SERVICES) | {WEB}:
    problem(f"expected Deployments {sorted(SERVICES + (WEB,))}, found {sorted(deployments)}")
for name in SERVICES:
    deployment = deployments.get(name)
    if deployment is None:
        continue
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    where = f"Deployment {name}"

    # Every name the container gets: env plus the keys of envFrom sources.
    names = {}
    for env in container.get("env", []):
        if "value" in env:
            source = "value"
        elif "secretKeyRef" in env.get("valueFrom", {}):
            source = "secret"
        else:
            source = "other"
        names[env["name"]] = source
    for env_from in container.get("envFrom", []):
        prefix = env_from.get("prefix", "")
        if "configMapRef" in env_from:
            cm = configmaps.get(env_from["configMapRef"]["name"])
            if cm is None:
                problem(f"{where}: ConfigMap {env_from['configMapRef']['name']} is not rendered")
                continue
            for key in cm.get("data", {}):
                names.setdefault(prefix + key, "configmap")
        if "secretRef" in env_from:
            secret = secrets.get(env_from["secretRef"]["name"])
            if secret is None:
                problem(f"{where}: envFrom Secret {env_from['secretRef']['name']} must be rendered to know its keys")
                continue
            for key in secret.get("data", {}):
                names.setdefault(prefix + key, "secret")
    for env_name, source in sorted(names.items()):
        if SENSITIVE.search(env_name) and source != "secret":
            problem(f"{where}: {env_name} must come from a Secret, not {source}")

    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    expected = {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics"}
    if any(annotations.get(k) != v for k, v in expected.items()) or "prometheus.io/port" not in annotations:
        problem(f"{where}: pod template needs prometheus.io scrape/port/path annotations")
    labels = deployment["spec"]["template"]["metadata"].get("labels", {})
    if labels.get("app.kubernetes.io/name") != name or labels.get("app.kubernetes.io/part-of") != "popug":
        problem(f"{where}: pod labels need app.kubernetes.io/name={name} and part-of=popug")

    service = services.get(name)
    if service is None:
        problem(f"Service {name} is missing")
    else:
        service_ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
        if service_ports != {"grpc": ports.get("grpc"), "metrics": ports.get("metrics")}:
            problem(f"Service {name}: ports must be the container's grpc and metrics ports")
        if service["spec"].get("selector") != {"app.kubernetes.io/name": name}:
            problem(f"Service {name}: selector must be app.kubernetes.io/name={name}")
    if not any(p["spec"]["selector"].get("matchLabels") == {"app.kubernetes.io/name": name} for p in pdbs.values()):
        problem(f"PodDisruptionBudget for {name} is missing")

# 3. The web app: its Service, PDB, HTTP probes, and an Ingress to it.
web = deployments.get(WEB)
if web is not None:
    (container,) = web["spec"]["template"]["spec"]["containers"]
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if "http" not in ports:
        problem(f"Deployment {WEB}: needs an `http` port")
    for probe in ("readinessProbe", "livenessProbe"):
        if container.get(probe, {}).get("httpGet", {}).get("port") != "http":
            problem(f"Deployment {WEB}: {probe} must be an HTTP GET on the http port")
    service = services.get(WEB)
    if service is None or {p["name"] for p in service["spec"]["ports"]} != {"http"}:
        problem(f"Service {WEB} must expose the http port")
    if not any(p["spec"]["selector"].get("matchLabels") == {"app.kubernetes.io/name": WEB} for p in pdbs.values()):
        problem(f"PodDisruptionBudget for {WEB} is missing")
    backends = [
        path["backend"]["service"]["name"]
        for ingress in by_kind.get("Ingress", {}).values()
        for rule in ingress["spec"].get("rules", [])
        for path in rule.get("http", {}).get("paths", [])
    ]
    if WEB not in backends:
        problem(f"no Ingress routes browsers to {WEB}")

for message in problems:
    print(f"FAIL {overlay}: {message}", file=sys.stderr)
print(f"{len(docs)} objects, {len(problems)} problems")
sys.exit(1 if problems else 0)
PY
    failed=1
  fi
done

# The alerts and dashboards (k8s/monitoring). The dashboards' ConfigMap is
# validated like any object; the PrometheusRule is a custom resource whose
# schema (the Prometheus operator's CRD) is not available offline, so
# kubernetes-validate would only warn about an unknown kind: it is checked
# here instead, structurally and against the rules file it is generated from.
echo "==> monitoring: render"
monitoring="$work/monitoring.yaml"
if ! kubectl kustomize monitoring >"$monitoring"; then
  echo "FAIL monitoring: kubectl kustomize failed" >&2
  failed=1
elif ! python3 - "$monitoring" "$work/monitoring-core.yaml" monitoring/prometheus/popug.rules.yml <<'PY'; then
import json
import sys

import yaml

rendered, core, rules_file = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
rules = yaml.safe_load(open(rules_file))
problems = []
custom = [d for d in docs if d["kind"] == "PrometheusRule"]
if len(custom) != 1:
    problems.append(f"expected one PrometheusRule, found {len(custom)}")
for rule in custom:
    if rule.get("apiVersion") != "monitoring.coreos.com/v1":
        problems.append(f"PrometheusRule {rule['metadata']['name']}: apiVersion must be monitoring.coreos.com/v1")
    if rule.get("spec") != {"groups": rules["groups"]}:
        problems.append("PrometheusRule spec differs from prometheus/popug.rules.yml: run monitoring/generate.sh")
dashboards = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
if not dashboards:
    problems.append("no ConfigMap labelled grafana_dashboard=1")
for cm in dashboards:
    for key, text in cm.get("data", {}).items():
        try:
            dashboard = json.loads(text)
        except ValueError as error:
            problems.append(f"ConfigMap {cm['metadata']['name']}: {key} is not JSON: {error}")
            continue
        if not dashboard.get("uid") or not dashboard.get("panels"):
            problems.append(f"ConfigMap {cm['metadata']['name']}: {key} needs a uid and panels")
with open(core, "w") as out:
    yaml.safe_dump_all([d for d in docs if d["kind"] != "PrometheusRule"], out)
for message in problems:
    print(f"FAIL monitoring: {message}", file=sys.stderr)
print(f"{len(docs)} objects ({len(custom)} PrometheusRule checked structurally), {len(problems)} problems")
sys.exit(1 if problems else 0)
PY
  failed=1
else
  echo "==> monitoring: kubernetes-validate --strict -k $K8S_VERSION (all but the PrometheusRule)"
  status=0
  report="$(kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$work/monitoring-core.yaml" 2>&1)" || status=$?
  if [[ $status -ne 0 || -n "$report" ]]; then
    printf '%s\n' "$report" >&2
    echo "FAIL monitoring: schema validation" >&2
    failed=1
  fi
fi

if [[ $failed -ne 0 ]]; then
  echo "k8s: validation FAILED" >&2
  exit 1
fi
echo "k8s: all overlays valid"
