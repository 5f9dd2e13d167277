#!/usr/bin/env python3
"""Writes a synthetic mesh for bench/scale.sh: N services, each a ServiceEntry with two
endpoints (labels version v1 and v2), a DestinationRule with subsets v1 and v2, and a
VirtualService with a header match (x-canary: "true" -> v2) and a 90/10 split of the
rest between v1 and v2, in the block style `kubectl get -o yaml` writes.

Services are grouped 100 to a namespace, one file per namespace
(`OUT/team-NNN.yaml`). Every endpoint address is on 127.0.0.0/8 (nothing here may send
traffic anywhere else); the endpoints of service 0 are 127.0.0.1:PORT_V1 and
127.0.0.1:PORT_V2, where bench/scale.sh runs the two backends it probes through.

    scale_mesh.py OUT N PORT_V1 PORT_V2
"""

import os
import sys

PER_NAMESPACE = 100


def endpoint_ip(n):
    """The n-th endpoint address on 127.0.0.0/8, skipping 127.0.0.1 and .0/.255 hosts."""
    n += 2 * 256  # start at 127.0.2.x
    a, b, c = (n >> 16) & 255, (n >> 8) & 255, n & 255
    c = 1 + c % 254
    return f"127.{a}.{b}.{c}"


def service(i, port_v1, port_v2):
    ns = f"team-{i // PER_NAMESPACE:03d}"
    name = f"svc-{i:05d}"
    fqdn = f"{name}.{ns}.svc.cluster.local"
    if i == 0:
        eps = [("127.0.0.1", port_v1), ("127.0.0.1", port_v2)]
    else:
        eps = [(endpoint_ip(2 * i), 8080), (endpoint_ip(2 * i + 1), 8080)]
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
  namespace: {ns}
  labels:
    app: {name}
spec:
  hosts:
  - {fqdn}
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: 8080
    name: http
    protocol: HTTP
  endpoints:
  - address: {eps[0][0]}
    ports:
      http: {eps[0][1]}
    labels:
      app: {name}
      version: v1
  - address: {eps[1][0]}
    ports:
      http: {eps[1][1]}
    labels:
      app: {name}
      version: v2
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {name}
  namespace: {ns}
spec:
  host: {name}
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: {ns}
spec:
  hosts:
  - {name}
  http:
  - name: canary-testers
    match:
    - headers:
        x-canary:
          exact: "true"
    route:
    - destination:
        host: {name}
        subset: v2
  - name: stable
    route:
    - destination:
        host: {name}
        subset: v1
      weight: 90
    - destination:
        host: {name}
        subset: v2
      weight: 10
---
"""


def main():
    out, n, port_v1, port_v2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    os.makedirs(out, exist_ok=True)
    for first in range(0, n, PER_NAMESPACE):
        path = os.path.join(out, f"team-{first // PER_NAMESPACE:03d}.yaml")
        with open(path, "w") as f:
            for i in range(first, min(n, first + PER_NAMESPACE)):
                f.write(service(i, port_v1, port_v2))


if __name__ == "__main__":
    main()
