# fastmock as a container: a small image, a non-root user, a health check without curl.
# The install and start commands are the ones tests/test_image.py runs: the wheels built from
# this tree, a fresh venv that installs them with no index, the shared libraries stripped,
# `fastmock` as the command, /healthz probed with Python's urllib.

FROM python:3.12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fastmock ./fastmock
# fastmock's wheel and its runtime dependencies' (uvloop, orjson, h11, httptools)
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[fast]"
RUN python -m venv /opt/fastmock \
    && /opt/fastmock/bin/pip install --no-cache-dir --no-index --find-links /wheels \
       "fastmock[fast]" \
    && find /opt/fastmock -name "*.so" -exec strip --strip-unneeded {} + \
    && /opt/fastmock/bin/pip uninstall -y -q pip

FROM python:3.12-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin fastmock
COPY --from=build /opt/fastmock /opt/fastmock
ENV PATH=/opt/fastmock/bin:$PATH \
    FASTMOCK_HOST=0.0.0.0 \
    FASTMOCK_PORT=8080
USER fastmock
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
CMD ["fastmock"]
