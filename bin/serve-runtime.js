// @ts-check
// How the gateway process runs, declared once: `tollgate serve` and `npm start` (which runs
// `tollgate serve`) start dist/main.js with these, the Docker image's ENTRYPOINT and ENV repeat
// them (test/deploy/dockerfile.test.ts checks they agree), and the benches measure with them.
// Why each: README.md, Operations ("Node flags", "malloc thresholds"); bench/README.md, Memory.

/**
 * V8 flags: a small young generation, no pretenuring of per-request objects, no heap shrink when idle,
 * major GCs in one pause (no incremental marking: large downloads set it off again and again), an
 * old-generation limit 50% above what the last major GC kept (garbage promoted in a burst of new
 * connections is collected before it spreads over new pages), and no Maglev (Node 24's mid-tier
 * compiler; off by default in Node 20's V8): its compiles of the connection path, while thousands of
 * connections open, left ~2 KiB a connection more resident, and the request path is as fast without it.
 */
export const SERVE_NODE_FLAGS = [
  '--max-semi-space-size=4',
  '--no-allocation-site-pretenuring',
  '--no-memory-reducer',
  '--no-incremental-marking',
  '--heap-growing-percent=50',
  '--no-maglev',
];

/**
 * glibc's malloc (read by the C library at process start only): its thresholds pinned at their
 * defaults, and one arena for every thread, so what V8's helper threads allocate and free (compile
 * zones) is handed back with the main heap's top instead of staying resident in arenas of their own.
 */
export const SERVE_ENV = {
  GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072:glibc.malloc.arena_max=1',
};
