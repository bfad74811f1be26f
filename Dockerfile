# syntax=docker/dockerfile:1
# Build: docker build -t inbox .   Run: docker run -p 8080:8080 -p 2525:2525 -v inbox-data:/data inbox

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY inbox ./inbox
COPY connectors ./connectors
COPY routing ./routing
COPY storage ./storage
COPY webui ./webui
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[mongodb]'

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin inbox \
    && mkdir -p /data && chown inbox /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels 'inbox-helpdesk[mongodb]' && rm -rf /wheels
ENV INBOX_DATA_DIR=/data \
    INBOX_HTTP_HOST=0.0.0.0 \
    INBOX_SMTP_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER inbox
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080 2525
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import os, sys, urllib.request; port = os.environ.get('INBOX_HTTP_PORT', '8080'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status != 200)"
ENTRYPOINT ["inbox"]
CMD ["serve"]
