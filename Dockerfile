# syntax=docker/dockerfile:1
# Tollgate: multi-stage build. The runtime image holds dist/, production dependencies and the
# example tree, runs as a non-root user, and keeps state only in /data (mount a volume there).
# Node.js 24, an LTS line in support (Node.js 20 reached its end of life in April 2026).

# Production dependencies only: the runtime's node_modules comes from here, as npm installed it
# (no dev tooling installed and pruned again). Install scripts are off but for better-sqlite3's,
# the one native addon (package.json's allowScripts), which compiles from source when no prebuilt
# binary can be fetched; the root's `prepare` (the TypeScript build) is the build stage's job.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3

# dist/: the TypeScript build, with the dev dependencies it needs (none of them ships).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim
# The admin listener is published (0.0.0.0): set TOLLGATE_METRICS_TOKEN (and an admin token)
# from a secret, or the gateway refuses to start with a clear message.
# GLIBC_TUNABLES as `npm start`: glibc's malloc thresholds pinned at their defaults. Otherwise the
# first free of a large block (V8's optimising compile of undici's WebAssembly parser frees a
# 2.2 MiB zone) raises them, and malloc then keeps up to twice that free at the top of its heap;
# one arena: V8's helper threads' compile zones otherwise stay resident in arenas of their own.
ENV NODE_ENV=production \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072:glibc.malloc.arena_max=1 \
    TOLLGATE_DATA_DIR=/data \
    TOLLGATE_HOST=0.0.0.0 \
    TOLLGATE_ADMIN_HOST=0.0.0.0
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
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
# V8 flags as `npm start` (the README's Operations section has the measurements):
# --max-semi-space-size=4 caps the young generation at 4 MiB per semi-space, for a lower peak
# RSS at the same CPU per request; --no-allocation-site-pretenuring stops V8 from taking
# per-request objects for long-lived ones under load and allocating them in the old generation;
# --no-memory-reducer stops V8 from shrinking the heap limits after ~40 s idle, which made the
# socket buffers of the next large downloads set off a major GC every ~50 ms;
# --no-incremental-marking makes a major GC one atomic pause: incremental marking, started again
# for each young-generation GC that downloads' socket buffers set off ("external memory
# pressure"), ran about one major GC per scavenge under 10 MiB downloads (1.4x the bare proxy's
# CPU per download; 0.8x without it); --heap-growing-percent=50 sets the next major GC at 1.5x
# what the last one kept, so garbage promoted while many connections open is collected before it
# spreads over new pages (10,000 new kept-alive connections: +33 instead of +48 MiB, CPU the same);
# --no-maglev turns off Node 24's mid-tier compiler, whose compiles while 10,000 connections open
# left them at +58 instead of +39 MiB, at the same or lower CPU per request.
ENTRYPOINT ["node", "--max-semi-space-size=4", "--no-allocation-site-pretenuring", "--no-memory-reducer", "--no-incremental-marking", "--heap-growing-percent=50", "--no-maglev", "dist/main.js"]
