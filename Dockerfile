# syntax=docker/dockerfile:1
# District mail gateway container.
#   docker build -t district-gateway .
#   docker run -d --init -p 25:10025 \
#       -v /srv/gateway/etc:/etc/gateway:ro -v gateway-quarantine:/var/lib/gateway \
#       district-gateway
# /etc/gateway holds gateway.yaml, policies.yaml, people.csv, relationships.csv (readable by
# uid 10025); /var/lib/gateway holds the quarantine (written by uid 10025 only).
# Without the district's own files the image holds only the sample district, and `serve`
# refuses to start on it (exit 78) unless `-e GATEWAY_DEMO=1` says it is a demonstration.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a self-contained virtualenv in /opt/gateway ---------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/gateway
WORKDIR /src
# Dependencies first, straight from pyproject.toml, so code edits do not re-download them; at
# the versions constraints.txt pins, the ones the release was tested with.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['fast']))" > /tmp/requirements.txt \
 && /opt/gateway/bin/pip install -c constraints.txt -r /tmp/requirements.txt
COPY README.md ./
COPY gateway/ gateway/
RUN /opt/gateway/bin/pip install --no-deps . \
 && /opt/gateway/bin/gateway --help > /dev/null

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="district-mail-gateway" \
      org.opencontainers.image.description="SMTP filter enforcing board policy 5.125"
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/gateway/bin:$PATH \
    GATEWAY_SAMPLES=/usr/share/gateway/config
RUN groupadd --system --gid 10025 gateway \
 && useradd --system --uid 10025 --gid gateway --home-dir /var/lib/gateway --no-create-home \
        --shell /usr/sbin/nologin gateway \
 && install -d -m 0700 -o gateway -g gateway /var/lib/gateway \
 && install -d -m 0750 -o root -g gateway /etc/gateway
COPY --from=build /opt/gateway /opt/gateway
# Examples, and the seed of a fresh /etc/gateway volume: replace people.csv and
# relationships.csv with the district's export and review policies.yaml before going live.
COPY config/ /usr/share/gateway/config/
RUN cp /usr/share/gateway/config/gateway.docker.yaml /etc/gateway/gateway.yaml \
 && for f in policies.yaml people.csv relationships.csv; do \
        if [ -f "/usr/share/gateway/config/$f" ]; then cp "/usr/share/gateway/config/$f" /etc/gateway/; fi; \
    done \
 && chown -R root:gateway /etc/gateway && chmod 0640 /etc/gateway/* \
 && chmod -R o-rwx /usr/share/gateway

VOLUME ["/etc/gateway", "/var/lib/gateway"]
WORKDIR /var/lib/gateway
USER 10025:10025
# 10025: SMTP (publish as 25); 9125: /metrics, /healthz, /readyz (keep it internal).
EXPOSE 10025 9125
# slim has no curl: ask /healthz with the interpreter that is already there. /healthz answers
# 503 when any worker's event loop has stopped (and not at all when worker 0's has), so a hung
# worker turns the container unhealthy until the gateway has replaced it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9125/healthz', timeout=4).status == 200 else 1)"]
# SIGTERM drains in-flight sessions (smtp.drain_timeout); give it time with
# `docker stop -t 45` / compose `stop_grace_period: 45s`. SIGHUP reloads policy and directory.
STOPSIGNAL SIGTERM
# Exec form: the daemon is PID 1's direct child under --init (or PID 1), so signals reach it.
# The entrypoint checks `serve` is not about to run on the sample district, then execs
# `gateway` with the same arguments (gateway/service/container.py).
ENTRYPOINT ["python", "-m", "gateway.service.container"]
CMD ["serve", "--config", "/etc/gateway/gateway.yaml"]
