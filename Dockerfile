# syntax=docker/dockerfile:1
# The Webcare app image: built in one stage, run as a non-root user in a slim one.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/webcare
COPY pyproject.toml README.md ./
COPY webcare ./webcare
COPY connectors ./connectors
RUN /opt/webcare/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/webcare/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --create-home --home-dir /var/lib/webcare --uid 10001 webcare
COPY --from=build /opt/webcare /opt/webcare
COPY frontend /opt/webcare/frontend
ENV PATH=/opt/webcare/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WEBCARE_DATABASE_URL=sqlite+aiosqlite:////var/lib/webcare/webcare.db
USER webcare
WORKDIR /var/lib/webcare
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["webcare", "serve", "--host", "0.0.0.0", "--port", "8000"]
