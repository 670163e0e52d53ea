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

# Builds behind a TLS-inspecting proxy pass its CA bundle (and mount it): --build-arg
# PIP_CERT=/etc/ssl/certs/ca-certificates.crt -v /etc/ssl/certs:/etc/ssl/certs:ro. Unset otherwise;
# it exists in this stage only, never in the runtime image.
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/syncd

WORKDIR /src
# The dependency layer first: rebuilt only when the lock changes. requirements-runtime.txt is the
# runtime part of constraints.txt (the versions CI tests, scripts/lock-dependencies.sh writes both),
# every file pinned by sha256: pip refuses anything else (--require-hashes), including the build
# requirements setuptools and wheel that pyproject.toml pins exactly.
COPY requirements-runtime.txt ./
RUN /opt/syncd/bin/python -m pip install --no-cache-dir --require-hashes -r requirements-runtime.txt

COPY pyproject.toml README.md ./
COPY syncd ./syncd
# syncd itself: nothing more to download (--no-deps, and the pinned setuptools already installed
# above builds it). pip compiles .pyc files here, at build time, so the read-only runtime never
# needs to write them. Then the tools only the build needed leave the virtualenv.
RUN /opt/syncd/bin/python -m pip install --no-cache-dir --no-deps --no-build-isolation . \
    && /opt/syncd/bin/python -m pip check \
    && /opt/syncd/bin/python -m pip uninstall --quiet --yes setuptools wheel packaging pip \
    && /opt/syncd/bin/syncd --version


# An SBOM (CycloneDX JSON) of exactly the distributions in /opt/syncd, the virtualenv the runtime
# stage copies. Built only on request (scripts/build-image.sh: --target sbom); its tool lives in
# its own virtualenv, pinned by hash, and never reaches the runtime image.
FROM build AS sbom
COPY deploy/image/sbom-requirements.txt /src/sbom-requirements.txt
RUN python -m venv /opt/sbom \
    && /opt/sbom/bin/python -m pip install --no-cache-dir --require-hashes -r /src/sbom-requirements.txt \
    && /opt/sbom/bin/cyclonedx-py environment --pyproject /src/pyproject.toml --output-reproducible \
       --output-format JSON --output-file /sbom.cdx.json /opt/syncd/bin/python


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
