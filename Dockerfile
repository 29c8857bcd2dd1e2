# The agent as a container: `docker compose up -d` (compose.yaml) or
#   docker build -t autotrader . && docker run --rm autotrader backtest
#
# BASE_IMAGE: a Debian bookworm image with Python 3.11 whose `python3 -m venv` works. Every stage uses
# it, so the virtual environment built in one finds the same interpreter in the final image. CI
# builds one from Debian's own packages (mmdebstrap) because it cannot pull from Docker Hub.
#
# Pip's defaults reach the internet: PyPI, and PyTorch's CPU index for torch (a plain torch from PyPI
# brings gigabytes of CUDA libraries). A machine with its own mirrors passes them as build arguments;
# a CA bundle it needs is a BuildKit secret (`--secret id=pip_cert,src=...`), used by the RUN steps
# and never written into a layer. Build arguments show in `docker history`: no credentials in them.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# What pip installs, read from pyproject.toml in a stage of its own: the deps stage copies the list,
# and an edit to pyproject.toml that leaves the dependencies alone keeps the installed layer cached.
FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /src/
RUN python3 -c 'import tomllib; p = tomllib.load(open("/src/pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["train"]))' > /requirements.txt \
    && grep -qx 'torch==2.13.0' /requirements.txt

# The dependencies in a virtual environment: the big layer (torch), rebuilt only when they change.
FROM ${BASE_IMAGE} AS deps
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_FIND_LINKS=
ARG PIP_TRUSTED_HOST=
ARG PIP_CONSTRAINT=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180
RUN python3 -m venv /opt/autotrader
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN --mount=type=secret,id=pip_cert --mount=type=cache,target=/root/.cache/pip \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    /opt/autotrader/bin/pip install -r /tmp/requirements.txt

# The project as a wheel (non-editable), built beside the dependencies it is checked against.
FROM deps AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY core core
COPY models models
COPY migrations migrations
COPY data data
RUN --mount=type=secret,id=pip_cert --mount=type=cache,target=/root/.cache/pip \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    /opt/autotrader/bin/pip wheel --no-deps --wheel-dir /dist .

FROM ${BASE_IMAGE}
# LightGBM's library needs the GNU OpenMP runtime, which slim images do not have.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/autotrader --shell /usr/sbin/nologin autotrader \
    && mkdir -p /var/lib/autotrader/models /var/lib/autotrader/data \
    && chown -R autotrader:autotrader /var/lib/autotrader
COPY --from=deps /opt/autotrader /opt/autotrader
# The project on top, a layer of a few MB: an upgrade that changes only the code downloads this.
# The bundled candles (`backtest`, `run --replay` defaults) are looked for beside the installed
# packages (core/data/bundled.py); a wheel does not carry data/, so they are copied there.
RUN --mount=type=bind,from=wheel,source=/dist,target=/dist --mount=type=bind,from=wheel,source=/src/data,target=/data \
    /opt/autotrader/bin/pip install --no-deps --no-index --no-cache-dir /dist/*.whl \
    && /opt/autotrader/bin/pip check \
    && target=$(cd / && /opt/autotrader/bin/python -c 'from core.data.bundled import BUNDLED_DATA_DIR as d; print(d)') \
    && case "$target" in /opt/autotrader/*) cp -r /data "$target" ;; *) echo "unexpected $target" >&2; exit 1 ;; esac
ENV PATH=/opt/autotrader/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER autotrader
# The working directory is the state volume's: `train` writes models/trained-<date> here, the console's
# pictures go to charts/. Settings come as environment variables (compose reads .env for them).
WORKDIR /var/lib/autotrader
VOLUME /var/lib/autotrader
# SIGTERM: the cycle in progress finishes, pending alerts are sent, exit 0 (compose's stop_grace_period
# leaves the time for it). Logs go to stdout and stderr: `docker logs`, no files.
STOPSIGNAL SIGTERM
# Healthy while cycles keep being stored (`autotrader health` reads the last one from DATABASE_URL);
# the start period covers migrations, model loading and the first cycle's wait.
HEALTHCHECK --interval=60s --timeout=30s --start-period=5m --retries=3 CMD ["autotrader", "health"]
ENTRYPOINT ["autotrader"]
CMD ["run"]
