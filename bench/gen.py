#!/usr/bin/env python3
"""Generates a synthetic manifest corpus for tally's benchmarks.

    python3 bench/gen.py OUT_DIR [--resources 10000] [--files 5000] [--seed 1]

Writes OUT_DIR/<team>/<app>/<n>.yaml: realistic objects of many kinds (workloads with full pod
specs, Services, ConfigMaps, RBAC, NetworkPolicies, quotas, HPAs, PDBs, Ingresses...), one to
several documents a file, in both .yaml and .yml. About 2% of workloads carry a schema mistake (an unknown
field, a wrong type) and about 10% a best-practice violation (`:latest`, privileged, a Secret in
an env var, hostNetwork, no readiness probe), so findings can be compared between tools. Deterministic for a seed.
Standard library only.
"""

import argparse
import os
import random

IMAGES = ["nginx:1.27.3", "ghcr.io/acme/api:2.4.1", "redis:7.4.1", "ghcr.io/acme/worker:1.9.0"]


def pod_spec(rng, name, broken):
    port = rng.choice([8080, 8443, 9090, 3000])
    # A few best-practice violations, so policy findings can be compared between tools.
    roll = rng.random()
    image = rng.choice(IMAGES)
    if roll < 0.03:
        image = image.split(":")[0] + ":latest"
    privileged = "\n            privileged: true" if 0.03 <= roll < 0.05 else ""
    secret_env = ("""
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: db
                  key: password""" if 0.05 <= roll < 0.07 else "")
    host_network = "      hostNetwork: true\n" if 0.07 <= roll < 0.08 else ""
    readiness = "" if 0.08 <= roll < 0.10 else """
          readinessProbe:
            httpGet:
              path: /ready
              port: http"""
    container = f"""      containers:
        - name: {name}
          image: {image}
          ports:
            - name: http
              containerPort: {port if not broken else '"' + str(port) + '"'}
          env:
            - name: LOG_LEVEL
              value: info{secret_env}
          resources:
            requests:
              cpu: {rng.choice(['100m', '250m', '500m'])}
              memory: {rng.choice(['128Mi', '256Mi', '512Mi'])}
            limits:
              memory: {rng.choice(['256Mi', '512Mi', '1Gi'])}{readiness}
          livenessProbe:
            httpGet:
              path: /live
              port: http
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities:
              drop: ["ALL"]{privileged}
          volumeMounts:
            - name: config
              mountPath: /etc/{name}
      volumes:
        - name: config
          configMap:
            name: {name}-config
"""
    return f"""{host_network}      serviceAccountName: {name}
      automountServiceAccountToken: false
      securityContext:
        seccompProfile:
          type: RuntimeDefault
{container}"""


def workload(rng, kind, ns, name, broken):
    labels = f"app.kubernetes.io/name: {name}"
    spec = pod_spec(rng, name, broken == "type")
    extra = "  replica: 3\n" if broken == "unknown" else ""
    if kind == "Deployment":
        return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels:
    {labels}
spec:
  replicas: {rng.randint(2, 6)}
{extra}  selector:
    matchLabels:
      {labels}
  template:
    metadata:
      labels:
        {labels}
    spec:
{spec}"""
    if kind == "StatefulSet":
        return f"""apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {name}
  namespace: {ns}
spec:
  serviceName: {name}
  replicas: 3
{extra}  selector:
    matchLabels:
      {labels}
  template:
    metadata:
      labels:
        {labels}
    spec:
{spec}  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests:
            storage: 10Gi
"""
    if kind == "DaemonSet":
        return f"""apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
  namespace: {ns}
spec:
{extra}  selector:
    matchLabels:
      {labels}
  template:
    metadata:
      labels:
        {labels}
    spec:
{spec}"""
    if kind == "CronJob":
        indented = "\n".join("    " + line if line else line for line in spec.split("\n"))
        return f"""apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
  namespace: {ns}
spec:
  schedule: "*/15 * * * *"
{extra}  jobTemplate:
    spec:
      ttlSecondsAfterFinished: 3600
      template:
        spec:
          restartPolicy: OnFailure
{indented}"""
    raise ValueError(kind)


def simple(rng, kind, ns, name):
    if kind == "Service":
        return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector:
    app.kubernetes.io/name: {name}
  ports:
    - name: http
      port: 80
      targetPort: http
"""
    if kind == "ConfigMap":
        return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-config
  namespace: {ns}
data:
  app.properties: |
    threads={rng.randint(1, 64)}
    cache.size={rng.randint(100, 10000)}
  LOG_FORMAT: json
"""
    if kind == "ServiceAccount":
        return f"""apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}
  namespace: {ns}
automountServiceAccountToken: false
"""
    if kind == "Role":
        return f"""apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {name}-reader
  namespace: {ns}
rules:
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["get", "list", "watch"]
"""
    if kind == "RoleBinding":
        return f"""apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {name}-reader
  namespace: {ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {name}-reader
subjects:
  - kind: ServiceAccount
    name: {name}
    namespace: {ns}
"""
    if kind == "HorizontalPodAutoscaler":
        return f"""apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
  namespace: {ns}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
  minReplicas: 2
  maxReplicas: {rng.randint(4, 20)}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
"""
    if kind == "PodDisruptionBudget":
        return f"""apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {name}
  namespace: {ns}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
"""
    if kind == "Ingress":
        return f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: {ns}
spec:
  ingressClassName: nginx
  tls:
    - hosts: ["{name}.example.com"]
      secretName: {name}-tls
  rules:
    - host: {name}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {name}
                port:
                  name: http
"""
    raise ValueError(kind)


def namespace_objects(ns):
    return [
        f"""apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
  labels:
    pod-security.kubernetes.io/enforce: restricted
""",
        f"""apiVersion: v1
kind: ResourceQuota
metadata:
  name: quota
  namespace: {ns}
spec:
  hard:
    requests.cpu: "20"
    requests.memory: 40Gi
    limits.memory: 80Gi
    pods: "200"
""",
        f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
  namespace: {ns}
spec:
  podSelector: {{}}
  policyTypes: ["Ingress", "Egress"]
""",
    ]


WORKLOADS = ["Deployment", "Deployment", "Deployment", "StatefulSet", "DaemonSet", "CronJob"]
EXTRAS = ["Service", "ConfigMap", "ServiceAccount", "Role", "RoleBinding",
          "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--resources", type=int, default=10000)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    docs_per_file = max(1, args.resources // args.files)
    objects = []
    team = 0
    while len(objects) < args.resources:
        ns = f"team-{team:03d}"
        objects.append((ns, "_namespace", namespace_objects(ns)))
        for app in range(10):
            name = f"app-{team:03d}-{app:02d}"
            broken = None
            roll = rng.random()
            if roll < 0.01:
                broken = "unknown"
            elif roll < 0.02:
                broken = "type"
            kind = rng.choice(WORKLOADS)
            docs = [workload(rng, kind, ns, name, broken)]
            docs += [simple(rng, k, ns, name) for k in EXTRAS]
            objects.append((ns, name, docs))
        team += 1

    # Flatten to (dir, document) and cut to the requested count.
    flat = []
    for ns, app, docs in objects:
        for d in docs:
            flat.append((ns, app, d))
    flat = flat[: args.resources]

    written = 0
    for i in range(0, len(flat), docs_per_file):
        chunk = flat[i:i + docs_per_file]
        ns, app, _ = chunk[0]
        d = os.path.join(args.out, ns, app)
        os.makedirs(d, exist_ok=True)
        ext = "yml" if (i // docs_per_file) % 3 == 0 else "yaml"
        with open(os.path.join(d, f"{i // docs_per_file:05d}.{ext}"), "w") as f:
            f.write("---\n".join(doc for _, _, doc in chunk))
        written += 1
    print(f"wrote {len(flat)} resources in {written} files under {args.out}")


if __name__ == "__main__":
    main()
