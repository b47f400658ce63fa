# syntax=docker/dockerfile:1
# The API image: `api` and `migrate` with the migrations, on debian:bookworm-slim, as a non-root user.
#
#   docker build -t neon-todo .
#   docker run --rm -e DATABASE_URL_UNPOOLED=... neon-todo migrate up     (pre-deploy step, direct URL)
#   docker run -p 8000:8000 -e DATABASE_URL=... -e JWT_SECRET=... neon-todo   (pooled URL)
#
# scripts/container-test builds and runs this file with podman (make container-test).
ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- build: compilers and -dev packages, thrown away after the build ----
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libpq-dev libevent-dev libjansson-dev libjwt-dev libssl-dev libpg-query-dev \
      libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
# COPY . . brings third_party/ too: the api embeds Swagger UI and ReDoc from it at compile time, so
# /docs and /redoc need no file in the runtime image and no network (DOCS_CDN_URL opts into a CDN).
# The source sits at /app, the same path the runtime image uses: the migrations directory the binaries
# were built with (MIGRATIONS_DIR in CMakeLists.txt) is then /app/migrations in both stages.
WORKDIR /app
COPY . .
RUN mkdir -p migrations \
 && cmake -S . -B /tmp/build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null \
 && cmake --build /tmp/build -j "$(nproc)" \
 && cmake --install /tmp/build --prefix /app --strip
# The Debian packages that provide the libraries the binaries link (libpq5, libevent-*, libjansson4,
# libjwt*, libssl3, ...), computed rather than listed so that a new dependency cannot be forgotten.
RUN set -e; for lib in $(ldd /app/bin/* 2>/dev/null | awk '$3 ~ /^\// { print $3 }' | sort -u); do \
      real=$(realpath "$lib"); \
      dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null \
        || { echo "no Debian package owns $lib" >&2; exit 1; }; \
    done > /tmp/owners; \
    cut -d: -f1 /tmp/owners | sort -u | grep -vx -e libc6 -e libgcc-s1 > /app/runtime-packages; \
    cat /app/runtime-packages

# ---- runtime: the shared libraries, the CA bundle (Neon requires TLS), nothing else ----
FROM ${DEBIAN_IMAGE}
# The version is project(... VERSION) of CMakeLists.txt, its one place: scripts/container-test passes it
# (--build-arg VERSION=...); a build without it labels the image "unknown".
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="neon-todo" \
      org.opencontainers.image.description="Todo REST API in C (libevent, libpq) for Neon serverless Postgres, with its migrate CLI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
COPY --from=build /app/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates $(cat /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log /tmp/runtime-packages \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin app
COPY --from=build /app/bin/ /app/bin/
COPY --from=build /app/migrations/ /app/migrations/
WORKDIR /app
# Numeric user, so that orchestrators can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
ENV PATH=/app/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8000 \
    APP_ENV=production \
    LOG_FORMAT=json
EXPOSE 8000
# Liveness without curl: the api binary's own probe of GET /health on HOST:PORT.
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 CMD ["/app/bin/api", "--healthcheck"]
# The API drains in-flight requests on SIGTERM and exits 0 (SHUTDOWN_TIMEOUT); give `docker stop -t`
# at least that long.
STOPSIGNAL SIGTERM
CMD ["api"]
