# syntax=docker/dockerfile:1
# The Webcare app image: the Python package and the dashboard's chart library are built in stages of their own,
# and run as a non-root user in a slim one.
FROM node:20-slim AS vendor
WORKDIR /src
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

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
# The one file of node_modules that webcare/frontend.py serves (at /vendor/chart.umd.min.js).
COPY --from=vendor /src/node_modules/chart.js/dist/chart.umd.min.js /src/node_modules/chart.js/LICENSE.md \
     /opt/webcare/frontend/node_modules/chart.js/dist/
ENV PATH=/opt/webcare/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WEBCARE_DATABASE_URL=sqlite+aiosqlite:////var/lib/webcare/webcare.db
USER webcare
WORKDIR /var/lib/webcare
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["webcare", "serve", "--host", "0.0.0.0", "--port", "8000"]
