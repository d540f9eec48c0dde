# llamad in a container: a build stage compiles the programs on Debian 12, the
# runtime stage has their shared libraries and nothing to build with.
#
#   podman build -t llamad .          (or docker build; tests/test_container.py
#                                      builds it with --isolation=chroot)
#   podman run -p 8080:8080 llamad    the bundled model, on 0.0.0.0:8080
#   podman run -p 8080:8080 -v /srv/models:/models:ro \
#       -e LLAMAD_MODEL=/models/my.gguf llamad --parallel 8
#
# Settings: flags after the image name, or LLAMAD_<KEY> variables (every conf
# key, capitalized; flags override them). The bundled model stays the default
# when LLAMAD_MODEL and --model are not given, whatever is mounted on /models.
FROM debian:12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        gcc libc6-dev meson ninja-build pkg-config python3 \
        libcjson-dev libmicrohttpd-dev libuv1-dev libpcre2-dev libcmocka-dev \
        libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only what `meson install` installs is compiled (the tests are not: minutes of
# kernels at -O3 nobody here runs); a program meson installs but this list
# lacks makes the install fail, not the image silently miss it.
RUN meson setup /build --prefix=/usr --sysconfdir=/etc \
    && meson compile -C /build llamad:executable llamad-run llamad-mkmodel llamad-bench llamad-cli \
    && meson install -C /build --no-rebuild --destdir /out \
    && rm -rf /out/usr/lib/systemd

FROM debian:12-slim
# curl probes /health for HEALTHCHECK: libcurl is here anyway for llamad-cli,
# so the curl program adds a few hundred kilobytes, and unlike a shell-only
# probe it speaks HTTP properly (status line, -f fails on the 503 of a model
# still loading or a drain).
RUN apt-get update && apt-get install -y --no-install-recommends \
        libcjson1 libmicrohttpd12 libuv1 libpcre2-8-0 libcurl4 curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 llamad \
    && useradd --system --uid 10001 --gid llamad --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin llamad \
    && mkdir /models
COPY --from=build /out/ /
# Models are mounted here; nothing in it is read unless LLAMAD_MODEL or
# --model names it (the default is the bundled /usr/share/llamad/stories260K.gguf).
VOLUME /models
ENV LLAMAD_HOST=0.0.0.0 LLAMAD_PORT=8080
EXPOSE 8080
# Numeric, so that a runtime that refuses root (Kubernetes' runAsNonRoot) can
# tell without reading /etc/passwd; it is the llamad system user.
USER 10001:10001
# SIGTERM drains: running requests finish (up to drain_timeout), then exit 0.
STOPSIGNAL SIGTERM
# The probe follows LLAMAD_PORT; a port set by flag needs --health-cmd too.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${LLAMAD_PORT:-8080}/health" || exit 1
ENTRYPOINT ["/usr/bin/llamad"]
