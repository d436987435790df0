# worker as a container: `worker serve` is the entrypoint and runs as PID 1
# (it reaps orphans and stops cleanly on SIGTERM).
#
#   docker build -t worker .
#   docker run -d --name worker worker
#   docker exec worker worker run echo hello     # only local requests are accepted,
#   docker exec worker worker out 1              # so clients run inside the container
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY certs ./certs
RUN pip install --no-cache-dir . && rm -rf /src

WORKDIR /
STOPSIGNAL SIGTERM
ENTRYPOINT ["worker"]
CMD ["serve"]
