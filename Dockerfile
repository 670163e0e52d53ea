# syntax=docker/dockerfile:1
# syncd container image: a build stage that installs the project into a virtualenv with the same
# pinned constraints CI uses, and a slim runtime stage that only copies that virtualenv in and runs
# as a fixed non-root user, ready for a read-only root filesystem.
#
# Base image: pinned to an exact Python patch release and Debian release. Pinning by digest
# (python:3.11.14-slim-bookworm@sha256:...) is stronger still, but digests cannot be resolved
# offline where this file was written: add one when building in CI (`docker buildx imagetools
# inspect python:3.11.14-slim-bookworm`) and let a bot (Renovate/Dependabot) keep it current.
# Both stages use the same image so the virtualenv's interpreter symlinks resolve in the runtime.

FROM python:3.11.14-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/syncd

WORKDIR /src
# Metadata and constraints first: the dependency layer is rebuilt only when they change.
COPY pyproject.toml constraints.txt README.md ./
COPY syncd ./syncd
# The same constraints file scripts/setup-dev.sh (and so CI) installs with: the image runs exactly
# the dependency versions the tests ran against. pip compiles .pyc files here, at build time, so
# the read-only runtime never needs to write them.
RUN /opt/syncd/bin/python -m pip install --no-cache-dir -c constraints.txt . \
    && /opt/syncd/bin/python -m pip check


FROM python:3.11.14-slim-bookworm AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="syncd" \
      org.opencontainers.image.description="Propagates HashiCorp Vault KV secret rotations into Cloudflare Workers secrets" \
      org.opencontainers.image.source="https://github.com/example/syncd" \
      org.opencontainers.image.documentation="https://github.com/example/syncd/blob/main/docs/kubernetes.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Platform team" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"

# A fixed UID/GID (not a name) so Kubernetes' runAsNonRoot can verify it and volume ownership
# (fsGroup) is predictable. The state directory is the only place syncd writes.
RUN groupadd --system --gid 10001 syncd \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin syncd \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/syncd

COPY --from=build /opt/syncd /opt/syncd

ENV PATH="/opt/syncd/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The SQLite state store; mount a persistent volume here (Kubernetes: a volumeClaimTemplate).
VOLUME ["/var/lib/syncd"]
WORKDIR /var/lib/syncd
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz itself and ignores Docker health checks.

ENTRYPOINT ["syncd"]
CMD ["run", "--config", "/etc/syncd/config.toml"]
