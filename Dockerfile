# syntax=docker/dockerfile:1
# Tollgate: multi-stage build. The runtime image holds dist/, production dependencies and the
# example tree, runs as a non-root user, and keeps state only in /data (mount a volume there).

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
# The admin listener is published (0.0.0.0): set TOLLGATE_METRICS_TOKEN (and an admin token)
# from a secret, or the gateway refuses to start with a clear message.
# GLIBC_TUNABLES as `npm start`: glibc's malloc thresholds pinned at their defaults. Otherwise the
# first free of a large block (V8's optimising compile of undici's WebAssembly parser frees a
# 2.2 MiB zone) raises them, and malloc then keeps up to twice that free at the top of its heap.
ENV NODE_ENV=production \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072 \
    TOLLGATE_DATA_DIR=/data \
    TOLLGATE_HOST=0.0.0.0 \
    TOLLGATE_ADMIN_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY examples ./examples
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.TOLLGATE_ADMIN_PORT||9090)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# V8 flags as `npm start` (see the README's Operations): the young generation capped at 4 MiB per
# semi-space (peak RSS in the bench 147 instead of 173 MiB with 8 MiB, CPU the same or lower),
# and no allocation-site
# pretenuring (under load V8 took per-request objects for long-lived ones and allocated them in
# the old generation: VmHWM 175 -> 137 MiB, CPU per request unchanged or lower), and no memory
# reducer (after ~40 s idle it shrank the heap limits, and the socket buffers of the next large
# downloads then set off a major GC every ~50 ms: 100 KiB at 440 instead of 210 µs per request).
ENTRYPOINT ["node", "--max-semi-space-size=4", "--no-allocation-site-pretenuring", "--no-memory-reducer", "dist/main.js"]
