#!/usr/bin/env python3
"""Generates a synthetic tally repo for the layout benchmark.

    python3 bench/gen_repo.py OUT_DIR [--environments 3] [--tenants 10] [--apps-per-tenant 50]

Each tenant owns one namespace; each app (a ServiceAccount, ConfigMap, Deployment, Service and
PodDisruptionBudget, written like examples/apps) belongs to one tenant; every environment runs
every tenant and app, with an image override and replicas. Standard library only.
"""

import argparse
import os

APP = """apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}
automountServiceAccountToken: false
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-settings
data:
  LOG_LEVEL: info
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
    spec:
      serviceAccountName: {name}
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: app
          image: registry.example.com/{tenant}/{name}:1.0.0
          ports:
            - name: http
              containerPort: 8080
          envFrom:
            - configMapRef:
                name: {name}-settings
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
            limits:
              memory: 256Mi
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
          readinessProbe:
            httpGet:
              path: /ready
              port: http
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector:
    app.kubernetes.io/name: {name}
  ports:
    - name: http
      port: 80
      targetPort: http
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {name}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--environments", type=int, default=3)
    ap.add_argument("--tenants", type=int, default=10)
    ap.add_argument("--apps-per-tenant", type=int, default=50)
    args = ap.parse_args()
    out = args.out
    write(f"{out}/tally.yaml", "apiVersion: tally.dev/v1alpha1\nkind: Repo\nmetadata:\n  name: bench\n"
          "spec:\n  kubernetesVersion: \"1.37\"\n")
    apps = []
    for t in range(args.tenants):
        tenant = f"team-{t:02d}"
        base = 10000 + t * 1000
        write(f"{out}/tenants/{tenant}/tenant.yaml", f"""apiVersion: tally.dev/v1alpha1
kind: Tenant
metadata:
  name: {tenant}
spec:
  namespaces: [{tenant}]
  quota: {{cpu: "64", memory: 128Gi, pods: 500}}
  network:
    ingressControllerNamespace: ingress-nginx
  ids:
    uid: {{min: {base}, max: {base + 999}}}
    gid: {{min: {base}, max: {base + 999}}}
  groups:
    - name: {tenant}-developers
      role: edit
""")
        for a in range(args.apps_per_tenant):
            name = f"{tenant}-app-{a:02d}"
            apps.append(name)
            write(f"{out}/apps/{name}/app.yaml", f"""apiVersion: tally.dev/v1alpha1
kind: App
metadata:
  name: {name}
spec:
  tenant: {tenant}
  namespace: {tenant}
  source:
    manifests: manifests
""")
            write(f"{out}/apps/{name}/manifests/app.yaml", APP.format(name=name, tenant=tenant))
    for e in range(args.environments):
        env = f"env-{e}"
        tenants = "".join(f"    - team-{t:02d}\n" for t in range(args.tenants))
        entries = "".join(
            f"    - name: {name}\n      images:\n        app: 1.0.{e}\n      replicas: {e + 2}\n"
            for name in apps)
        write(f"{out}/environments/{env}/environment.yaml", f"""apiVersion: tally.dev/v1alpha1
kind: Environment
metadata:
  name: {env}
spec:
  tenants:
{tenants}  apps:
{entries}""")
    print(f"wrote {args.environments} environments, {args.tenants} tenants, {len(apps)} apps under {out}")


if __name__ == "__main__":
    main()
