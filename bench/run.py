#!/usr/bin/env python3
"""tally's benchmark: one command, every figure side by side.

    python3 bench/run.py [--resources 10000] [--files 5000] [--runs 3] [--no-peers]

1. builds `tally` in release mode;
2. generates a synthetic corpus (bench/gen.py) under bench/out/;
3. installs the peers into bench/out/venv from PyPI: kubernetes-validate (the same Kubernetes
   schemas tally embeds) and Checkov;
4. times, on the same files: `tally validate` with schemas only, with schemas and policies,
   kubernetes-validate --strict, and `checkov --framework kubernetes`; wall time (best of --runs)
   and peak resident memory of each;
5. prints throughput and the ratios, and how many findings each tool reports for the concepts
   both tally and Checkov cover.

6. the engine section: a repo of 1 environment x 10 tenants x 18 apps (about 1,000 objects),
   applied with `tally apply` against the fake API server by bench/engine.rs (a cargo example,
   `engine-bench`): the first apply, no-op applies (wall time, peak memory, and every request the
   server counted), a plan, and one changed field.

    python3 bench/run.py --engine-only     runs step 6 alone

7. precision on real trees: `tally validate` on every tree under ../shared/corpus (when present)
   or the directories given with --tree; per tree: files, objects, files skipped as not
   Kubernetes objects, and errors and warnings by rule (infos are counted, not listed).

    python3 bench/run.py --precision-only [--tree DIR ...]

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
OUT = os.path.join(HERE, "out")
VENV = os.path.join(OUT, "venv")
K8S_VERSION = "1.37"



def checkov_equivalents():
    """Checkov check id -> tally rule id, read from the catalog's `equivalents` entries."""
    import re
    mapping, rule = {}, None
    with open(os.path.join(ROOT, "policies", "catalog.yaml")) as f:
        for line in f:
            m = re.match(r"^\s*- id: ([a-z0-9-]+)\s*$", line)
            if m:
                rule = m.group(1)
                continue
            m = re.match(r"^\s*- Checkov (.*)$", line)
            if m and rule:
                for check in re.findall(r"CKV_K8S_\d+", m.group(1)):
                    mapping[check] = rule
    return mapping


CHECKOV_TO_TALLY = checkov_equivalents()


def run_timed(cmd, runs, env=None):
    """Runs cmd `runs` times under GNU time; returns (best wall seconds, peak RSS MiB, last
    exit code, last stdout)."""
    gnu_time = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    best, peak, code, out = None, float("nan"), None, b""
    for _ in range(runs):
        wrapped = [gnu_time, "-f", "%M", *cmd] if gnu_time else cmd
        start = time.perf_counter()
        proc = subprocess.run(wrapped, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        wall = time.perf_counter() - start
        code, out = proc.returncode, proc.stdout
        best = wall if best is None else min(best, wall)
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
        try:
            rss = int(tail[0]) / 1024.0
            peak = rss if peak != peak else max(peak, rss)
        except (IndexError, ValueError):
            pass
    return best, peak, code, out


def ensure_venv(packages):
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    for pkg in packages:
        name = pkg.split("=")[0]
        if subprocess.run([py, "-m", "pip", "show", "-q", name],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            print(f"installing {pkg} into bench/out/venv ...", flush=True)
            r = subprocess.run([py, "-m", "pip", "install", "-q", pkg])
            if r.returncode != 0:
                print(f"  could not install {pkg}; skipping it", flush=True)


def manifest_files(corpus):
    files = []
    for d, _, names in os.walk(corpus):
        files += [os.path.join(d, n) for n in names if n.endswith((".yaml", ".yml"))]
    return sorted(files)


def count_tally(out):
    try:
        doc = json.loads(out)
    except json.JSONDecodeError:
        return {}
    counts = {}
    for f in doc.get("findings", []):
        if not f.get("exempted"):
            counts[f["rule"]] = counts.get(f["rule"], 0) + 1
    return counts


def count_checkov(out):
    try:
        doc = json.loads(out)
    except json.JSONDecodeError:
        return {}
    reports = doc if isinstance(doc, list) else [doc]
    counts = {}
    for rep in reports:
        for check in rep.get("results", {}).get("failed_checks", []):
            rule = CHECKOV_TO_TALLY.get(check.get("check_id"))
            if rule:
                counts[rule] = counts.get(rule, 0) + 1
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--resources", type=int, default=10000)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-peers", action="store_true", help="time tally only")
    ap.add_argument("--engine-only", action="store_true", help="run the engine section only")
    ap.add_argument("--precision-only", action="store_true",
                    help="run the precision section (real trees) only")
    ap.add_argument("--tree", action="append", default=[],
                    help="a real-world tree for the precision section (repeatable; default: the "
                         "trees under ../shared/corpus)")
    args = ap.parse_args()

    os.makedirs(OUT, exist_ok=True)
    if args.engine_only:
        engine_section()
        return
    if args.precision_only:
        precision_section(args.tree)
        return
    print("building tally (release) ...", flush=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "tally"], cwd=ROOT, check=True)
    tally = os.path.join(ROOT, "target", "release", "tally")

    corpus = os.path.join(OUT, f"corpus-v2-{args.resources}-{args.files}")
    if not os.path.isdir(corpus):
        subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), corpus,
                        "--resources", str(args.resources), "--files", str(args.files)], check=True)
    files = manifest_files(corpus)
    n = args.resources
    print(f"corpus: {n} resources in {len(files)} files; {os.cpu_count()} cores", flush=True)

    rows = []
    base = [tally, "validate", corpus, "--format", "json", "--fail-on", "never",
            "--kubernetes-version", K8S_VERSION]
    schema_only = base + ["--no-policies"]
    t_schema, mem, _, _ = run_timed(schema_only, args.runs)
    rows.append(("tally validate (schemas only)", t_schema, mem))
    t_full, mem, _, tally_out = run_timed(base, args.runs)
    rows.append(("tally validate (schemas + policies)", t_full, mem))

    repo = os.path.join(OUT, "repo-3x10x50")
    if not os.path.isdir(repo):
        subprocess.run([sys.executable, os.path.join(HERE, "gen_repo.py"), repo], check=True,
                       stdout=subprocess.DEVNULL)
    t_repo, mem_repo, _, repo_out = run_timed(
        [tally, "validate", repo, "--format", "json", "--fail-on", "never"], args.runs)
    repo_objects = json.loads(repo_out).get("summary", {}).get("objects", 0)

    checkov_counts = None
    if not args.no_peers:
        ensure_venv(["kubernetes-validate==1.37.0", "checkov"])
        kv = os.path.join(VENV, "bin", "kubernetes-validate")
        if os.path.exists(kv):
            cmd = [kv, "--strict", "--quiet", "-k", K8S_VERSION + ".0", *files]
            t, mem, _, _ = run_timed(cmd, 1)
            rows.append(("kubernetes-validate --strict", t, mem))
        ck = os.path.join(VENV, "bin", "checkov")
        if os.path.exists(ck):
            cmd = [ck, "--framework", "kubernetes", "-d", corpus, "--quiet", "--compact",
                   "-o", "json", "--skip-download"]
            env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
            t, mem, _, out = run_timed(cmd, 1, env)
            rows.append(("checkov --framework kubernetes", t, mem))
            checkov_counts = count_checkov(out)

    print()
    print(f"{'tool':40} {'wall s':>9} {'resources/s':>12} {'peak MiB':>9} {'vs tally':>9}")
    for name, t, mem in rows:
        ref = t_schema if "kubernetes-validate" in name else t_full
        ratio = f"{t / ref:8.1f}x" if not name.startswith("tally") else ""
        print(f"{name:40} {t:9.3f} {n / t:12.0f} {mem:9.1f} {ratio:>9}")
    print(f"\npolicies cost: {t_full / t_schema:.2f}x the schema-only time")
    print(f"repo (3 environments x 10 tenants x 50 apps each; {repo_objects} rendered objects): "
          f"render + validate every environment in {t_repo:.3f} s, peak {mem_repo:.1f} MiB")

    if checkov_counts is not None:
        tally_counts = count_tally(tally_out)
        print("\nfindings on concepts both tools check (tally rule: tally / checkov)")
        for rule in sorted(set(CHECKOV_TO_TALLY.values())):
            print(f"  {rule:34} {tally_counts.get(rule, 0):7} / {checkov_counts.get(rule, 0):7}")

    precision_section(args.tree)
    engine_section()


def precision_section(trees):
    """`tally validate` on real trees: what it reads, skips and reports, by rule."""
    print("\nprecision: building tally (release) ...", flush=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "tally"], cwd=ROOT,
                   check=True)
    tally = os.path.join(ROOT, "target", "release", "tally")
    if not trees:
        corpus = os.path.join(os.path.dirname(ROOT), "shared", "corpus")
        if os.path.isdir(corpus):
            trees = sorted(os.path.join(corpus, d) for d in os.listdir(corpus)
                           if os.path.isdir(os.path.join(corpus, d)))
    if not trees:
        print("precision: no tree (give --tree DIR, or put trees under ../shared/corpus)")
        return
    tools = [t for t in ("helm", "kustomize", "kubectl")
             if subprocess.run(["sh", "-c", f"command -v {t}"], capture_output=True).returncode == 0]
    print(f"precision: renderers on PATH: {', '.join(tools) or 'none'}")
    for tree in trees:
        start = time.monotonic()
        out = subprocess.run([tally, "validate", tree, "--format", "json", "--fail-on", "never",
                              "--no-config"], capture_output=True, text=True)
        took = time.monotonic() - start
        try:
            report = json.loads(out.stdout)
        except json.JSONDecodeError:
            print(f"\n{tree}: tally did not report ({out.returncode}): {out.stderr.strip()[:300]}")
            continue
        s = report["summary"]
        print(f"\n{os.path.basename(tree.rstrip('/'))}: {s['files']} inputs, {s['objects']} objects, "
              f"{s.get('skipped', 0)} files skipped as not Kubernetes objects, {took:.2f} s")
        print(f"  {s['errors']} errors, {s['warnings']} warnings, {s['infos']} infos")
        by = {}
        for f in report["findings"]:
            if f.get("exempted") or f["severity"] == "info":
                continue
            key = (f["severity"], f["rule"])
            by[key] = by.get(key, 0) + 1
        for (severity, rule), n in sorted(by.items(), key=lambda kv: (kv[0][0] != "error", -kv[1])):
            print(f"  {severity:8} {rule:34} {n:5}")


def engine_section():
    """`tally apply` on about 1,000 objects against the fake API server (bench/engine.rs)."""
    print("\nengine: building tally and engine-bench (release) ...", flush=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "tally",
                    "--example", "engine-bench"], cwd=ROOT, check=True)
    repo = os.path.join(OUT, "repo-1x10x18")
    if not os.path.isdir(repo):
        subprocess.run([sys.executable, os.path.join(HERE, "gen_repo.py"), repo,
                        "--environments", "1", "--tenants", "10", "--apps-per-tenant", "18"],
                       check=True, stdout=subprocess.DEVNULL)
    # The one-change step: one app's replicas, 2 -> 3 (gen_repo.py writes every app's entry so).
    entry = "    - name: team-00-app-00\n      images:\n        app: 1.0.0\n      replicas: {}\n"
    release = os.path.join(ROOT, "target", "release")
    subprocess.run([os.path.join(release, "examples", "engine-bench"),
                    "--tally", os.path.join(release, "tally"), "--repo", repo, "--env", "env-0",
                    "--edit", os.path.join("environments", "env-0", "environment.yaml"),
                    "--from", entry.format(2), "--to", entry.format(3)], check=True)


if __name__ == "__main__":
    main()
