#!/usr/bin/env bash
# Checks popug's alerts and dashboards (run by .ci/run; needs promtool):
#   1. prometheus-rule.yaml is generated from prometheus/popug.rules.yml;
#   2. promtool check rules, and promtool test rules (each alert fires and
#      resolves);
#   3. every metric the rules and dashboards query is one the code records
#      (a `metrics::counter!/gauge!/histogram!` in the workspace's sources);
#   4. every alert has a runbook section in k8s/README.md.
set -euo pipefail
cd "$(dirname "$0")"

./generate.sh --check
promtool check rules prometheus/popug.rules.yml
(cd prometheus && promtool test rules popug.rules.test.yml)

python3 - <<'PY'
import json
import pathlib
import re
import sys

import yaml

root = pathlib.Path("../..")
recorded = {}
for path in root.glob("**/src/**/*.rs"):
    if "target" in path.parts:
        continue
    for kind, name in re.findall(r'metrics::(counter|gauge|histogram)!\(\s*"([a-z_:]+)"', path.read_text()):
        recorded[name] = kind

def known(series):
    if series in recorded:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if series.endswith(suffix) and recorded.get(series[: -len(suffix)]) == "histogram":
            return True
    return False

problems = []
queries = []
rules = yaml.safe_load(open("prometheus/popug.rules.yml"))
alerts = []
for group in rules["groups"]:
    for rule in group["rules"]:
        queries.append((f"alert {rule['alert']}", rule["expr"]))
        alerts.append(rule["alert"])
uids = set()
for path in sorted(pathlib.Path("dashboards").glob("*.json")):
    dashboard = json.load(open(path))
    if dashboard.get("uid") in uids:
        problems.append(f"{path}: uid {dashboard.get('uid')} is not unique")
    uids.add(dashboard.get("uid"))
    for panel in dashboard["panels"]:
        if not panel.get("targets"):
            problems.append(f"{path}: panel {panel['title']!r} has no query")
        for target in panel.get("targets", []):
            queries.append((f"{path} panel {panel['title']!r}", target["expr"]))
for where, expr in queries:
    # Metric names: popug_* identifiers not followed by `(` (functions) or
    # inside a label matcher.
    for name in re.findall(r"\b(popug_[a-z_]+)\b", expr):
        if not known(name):
            problems.append(f"{where}: {name} is not recorded anywhere in the code")
readme = open("../README.md").read().lower()
for alert in alerts:
    if not re.search(rf"^#+ {alert.lower()}\s*$", readme, re.M):
        problems.append(f"alert {alert} has no runbook section (a `### {alert}` heading) in k8s/README.md")
for problem in problems:
    print(f"FAIL monitoring: {problem}", file=sys.stderr)
print(f"{len(queries)} queries over {len(recorded)} recorded metrics, {len(alerts)} alerts, {len(problems)} problems")
sys.exit(1 if problems else 0)
PY
