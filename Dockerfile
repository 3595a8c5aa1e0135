# One image for every process of HealthOmics Event Workers: the command picks the process.
#   docker run IMAGE poll | worker --pool archive | sweep --every 30 | flower | db upgrade
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HEALTH_FILE=/tmp/omics-events.health

RUN groupadd --system --gid 10001 omics \
 && useradd --system --uid 10001 --gid omics --home-dir /home/omics --create-home omics

WORKDIR /app
# dependencies come from pyproject.toml; the sources are copied after, so code changes keep
# the dependency layer cached
COPY pyproject.toml README.md ./
RUN mkdir -p schemas eventlog workers producers cli simulator devtools \
 && touch schemas/__init__.py eventlog/__init__.py workers/__init__.py producers/__init__.py \
          cli/__init__.py simulator/__init__.py devtools/__init__.py \
          omics_events.py celeryconfig.py \
 && pip install . \
 && pip uninstall --yes healthomics-event-workers
COPY celeryconfig.py omics_events.py ./
COPY schemas ./schemas
COPY eventlog ./eventlog
COPY workers ./workers
COPY producers ./producers
COPY cli ./cli
COPY simulator ./simulator
COPY devtools ./devtools
RUN pip install --no-deps . && rm -rf /root/.cache

USER omics
WORKDIR /home/omics

# What "healthy" means depends on the process (OMICS_PROCESS: poller, sweeper, flower or
# worker:<pool>): progress within HEALTH_MAX_AGE, not merely a live PID.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["omics-events", "health"]

ENTRYPOINT ["omics-events"]
CMD ["--help"]
