# batchthumb as a batch image: a Kubernetes Job or CronJob runs one command and exits.
#
#   docker build -t registry.example.com/batchthumb:0.1.0 .
#   docker push registry.example.com/batchthumb:0.1.0
#
# Installed from requirements/runtime.txt (exact versions, hashes checked) by the same
# script the tests run (docker/install.sh). libvips comes in the pyvips-binary wheel: no
# compiler, no system packages. No HEALTHCHECK: a batch run's health is its exit status.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/batchthumb/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/runtime.txt requirements/
COPY docker/install.sh docker/
COPY batchthumb batchthumb/
RUN ./docker/install.sh /opt/batchthumb \
    && rm -rf /src \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin batchthumb

USER 10001
WORKDIR /tmp
ENTRYPOINT ["batchthumb"]
CMD ["--help"]
