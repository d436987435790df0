# worker as a container: `worker serve` is the entrypoint and runs as PID 1
# (it reaps orphans and stops cleanly on SIGTERM). It runs as root on
# purpose: only root can run each API user's jobs as a uid of that user's own
# (allocated from 61184-65519, with a private directory under
# /var/lib/worker), so that no job runs as root or can touch the server or
# another user's jobs. Docker's default capabilities allow that; PID and mount
# namespaces per job need CAP_SYS_ADMIN (`--cap-add SYS_ADMIN`), and the
# server says at start which it could apply. Inside Docker the cgroup tree is
# usually read-only, so jobs are tracked by session and descent.
#
#   docker build -t worker .
#   docker run -d --name worker worker
#   docker exec worker worker run echo hello     # only local requests are accepted,
#   docker exec worker worker out 1              # so clients run inside the container
#
# BASE is any Debian-like image with python3 (3.11+, with its venv module);
# the default is the official Python image. To build with no network,
# put wheels of worker and every dependency, made by the base's Python version,
# in wheels/ first: pip then installs from there only (and does so whenever
# wheels/ holds any: delete it to build from the source again), e.g.
#
#   python3.11 -m pip wheel --wheel-dir wheels .
#   docker build --build-arg BASE=my-debian-python:12 -t worker .
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG VERSION=0.1.0
ARG SOURCE=
LABEL org.opencontainers.image.title="worker" \
      org.opencontainers.image.description="Run Linux commands as jobs through an HTTPS API and a friendly CLI." \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}"

# A full PATH, not "...:$PATH": an imported base image may have none.
ENV PATH=/opt/worker/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8

# .dockerignore lets only the package, its demo material, its metadata and
# wheels/ through. Jobs start through the compiled spawner where pip finds a
# C compiler (a base image with one, or wheels made on a host with one: it is
# static, so it runs here), else through the slower Python one; the start-up
# line says which.
COPY . /src
RUN set -eu; \
    python3 -m venv /opt/worker; \
    if ls /src/wheels/*.whl >/dev/null 2>&1; then \
        pip install --no-cache-dir --disable-pip-version-check --no-index \
            --find-links /src/wheels worker; \
    else \
        pip install --no-cache-dir --disable-pip-version-check /src; \
    fi; \
    rm -rf /src

WORKDIR /var/lib/worker
# `worker health` asks the server (no credentials needed) whether it and its
# executor answer: exit 0 and "ok", else 1. It asks https://127.0.0.1:8443
# with the demo CA: a server started with another port or certificate needs
# WORKER_URL / WORKER_CA set for the container (`docker run -e ...`), which
# `docker exec` clients then use too.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["worker", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["worker"]
CMD ["serve"]
