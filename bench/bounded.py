#!/usr/bin/env python3
"""tally's input-bound benchmark: what hostile and very large inputs cost, in time and memory.

    python3 bench/bounded.py [--runs 1] [--only NAME ...] [--no-build]

Builds `tally` in release mode, generates each case under bench/out/bounded/, runs
`tally validate` on it once per run (best wall time kept) under GNU time, and prints wall time,
peak resident memory, the input size and the findings count. The cases:

- deployments-1mb / -10mb / -100mb / -50mb: one file, a stream of ordinary Deployments;
- aliases-538kb: 200 documents, each expanding aliases to about 190,000 nodes (each alone was
  under the old per-document budget; together they used to take gigabytes);
- nested-anchors: 250 anchors, each nested in the one before (about 200 KB);
- keys-1m: one ConfigMap whose `data` holds 1,000,000 keys (and so is over etcd's 1.5 MiB);
- minified-5000: a 1 MB one-line JSON List of 5,000 ConfigMaps, each with an unknown field,
  reported in human form (the default) and in SARIF.

Nothing here asserts a time: it measures and prints. Standard library only.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out", "bounded")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
TALLY = os.path.join(TARGET, "release", "tally")

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-{i}
  namespace: shop
  labels:
    app.kubernetes.io/name: web-{i}
spec:
  replicas: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: web-{i}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web-{i}
    spec:
      serviceAccountName: web
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: web
          image: registry.example.com/web:1.{i}.0
          ports:
            - containerPort: 8080
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{cpu: 500m, memory: 256Mi}}
          readinessProbe:
            httpGet: {{path: /ready, port: 8080}}
          livenessProbe:
            httpGet: {{path: /live, port: 8080}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
"""


def deployments(path, megabytes):
    target = megabytes << 20
    with open(path, "w") as f:
        written, i = 0, 0
        while written < target:
            doc = ("---\n" if i else "") + DEPLOYMENT.format(i=i)
            f.write(doc)
            written += len(doc)
            i += 1


def aliases(path):
    # 19 leaves, then four levels of ten aliases each: 190,000 nodes per document.
    lines = []
    for d in range(200):
        doc = ["---" if d else "", "a0: &a0 [" + ", ".join(["x"] * 19) + "]"]
        for level in range(1, 5):
            doc.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
        doc.append("# " + "padding " * 280)
        lines.extend(line for line in doc if line)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def nested_anchors(path):
    pad = ", ".join(f"p{j:03d}-xxxxxxxxxx" for j in range(40))
    text = "root: " + "".join(f"&a{i} [{pad}, " for i in range(250)) + "end" + "]" * 250 + "\n"
    text += "again: *a10\n"
    with open(path, "w") as f:
        f.write(text)


def keys(path, n):
    with open(path, "w") as f:
        f.write("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  namespace: shop\ndata:\n")
        for i in range(n):
            f.write(f"  k{i:07d}: v\n")


def minified(path, n):
    items = []
    for i in range(n):
        items.append(json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"c{i}", "namespace": "shop"},
            "datum": {"x": "y" * 100},
        }, separators=(",", ":")))
    text = '{"apiVersion":"v1","kind":"List","items":[' + ",".join(items) + "]}"
    with open(path, "w") as f:
        f.write(text)


CASES = [
    ("deployments-1mb", "d1.yaml", lambda p: deployments(p, 1), []),
    ("deployments-10mb", "d10.yaml", lambda p: deployments(p, 10), []),
    ("deployments-50mb", "d50.yaml", lambda p: deployments(p, 50), []),
    ("deployments-100mb", "d100.yaml", lambda p: deployments(p, 100), []),
    ("aliases-538kb", "aliases.yaml", aliases, []),
    ("nested-anchors", "nested.yaml", nested_anchors, []),
    ("keys-1m", "keys.yaml", lambda p: keys(p, 1_000_000), []),
    ("minified-5000 (human)", "min.json", lambda p: minified(p, 5000), ["--format", "human"]),
    ("minified-5000 (sarif)", "min.json", None, ["--format", "sarif"]),
]


def run(cmd, runs):
    best, peak, out = None, 0, None
    for _ in range(runs):
        start = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True)
        wall = time.perf_counter() - start
        rss_kib = int(p.stderr.decode().strip().splitlines()[-1])
        best = wall if best is None else min(best, wall)
        peak = max(peak, rss_kib)
        out = p
    return best, peak / 1024, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "tally"], cwd=ROOT, check=True)
    os.makedirs(OUT, exist_ok=True)
    print(f"{'case':<24} {'input':>10} {'wall':>9} {'peak RSS':>10} {'findings':>9}  exit")
    for name, file, gen, extra in CASES:
        if args.only and not any(o in name for o in args.only):
            continue
        path = os.path.join(OUT, file)
        if gen and not os.path.exists(path):
            gen(path)
        size = os.path.getsize(path)
        fmt = extra or ["--format", "json"]
        cmd = [TALLY, "validate", "--no-config", "--missing-schema", "ignore", *fmt, path]
        wall, peak, p = run(cmd, args.runs)
        findings = "-"
        if fmt == ["--format", "json"]:
            try:
                findings = str(len(json.loads(p.stdout)["findings"]))
            except (ValueError, KeyError):
                findings = "invalid JSON"
        elif fmt == ["--format", "sarif"]:
            try:
                findings = str(len(json.loads(p.stdout)["runs"][0]["results"]))
            except (ValueError, KeyError, IndexError):
                findings = "invalid SARIF"
        print(f"{name:<24} {size / 1e6:>8.2f}MB {wall:>8.2f}s {peak:>8.1f}MiB {findings:>9}  {p.returncode}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
