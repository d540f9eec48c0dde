# llamad in a container: builds on Debian 12 and runs the daemon on the bundled
# model, listening on all interfaces. Another model: mount it and pass --model.
FROM debian:12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        gcc libc6-dev meson ninja-build pkg-config python3 \
        libcjson-dev libmicrohttpd-dev libuv1-dev libpcre2-dev libcmocka-dev \
        libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN meson setup /build --prefix=/usr \
    && meson install -C /build --destdir /out

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        libcjson1 libmicrohttpd12 libuv1 libpcre2-8-0 libcurl4 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
USER nobody
EXPOSE 8080
ENTRYPOINT ["/usr/bin/llamad", "--host", "0.0.0.0", "--port", "8080"]
