# The ticker server image used by docker-compose.yml (two replicas on one Redis).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the wheel is built from (pyproject.toml force-includes web/ and names README.md).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ticker/ ticker/
COPY web/ web/
RUN pip install . \
    && useradd --system --create-home --uid 10001 ticker

# Run from an empty directory so the installed package is imported, not /src.
USER ticker
WORKDIR /home/ticker
ENV TICKER_DATA_DIR=/home/ticker/data
EXPOSE 8000

HEALTHCHECK --interval=5s --timeout=4s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]

CMD ["ticker", "serve", "--host", "0.0.0.0", "--port", "8000"]
