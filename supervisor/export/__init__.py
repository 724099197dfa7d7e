"""Beyond one machine: each location as a Docker image and as Kubernetes objects.

`export docker` writes a build context per location whose image holds exactly the
environment the supervisor built for it (docker.py, lock.py, code.py), served as `up`
serves it (serve.py). `export kubernetes` writes a Deployment and a Service per location
(kubernetes.py), a `grpc_server` workspace for the host side (hostside.py) and, for
Dagster locations, values for Dagster's Helm chart (helm.py), all under DNS-1123 names
(names.py) and with the same image tags (images.py); cluster.py puts them together.
"""
