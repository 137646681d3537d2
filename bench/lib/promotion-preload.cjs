// @ts-check
'use strict';
// What V8 promotes: a sampling heap profile of the objects that outlive young-generation GCs.
//
// Preload into the bench's gateways (NODE_OPTIONS reaches every child; only Tollgate processes,
// `dist/main.js`, are profiled):
//
//   PROMOTION_OUT=/tmp/redis-hit.heapprofile \
//   NODE_OPTIONS="--require ./bench/lib/promotion-preload.cjs" \
//   node bench/run.mjs --only=redis-hit --routes=1k --rounds=1 --duration=10 --no-write
//   node bench/promotion-report.mjs /tmp/redis-hit.heapprofile
//
// V8's sampling heap profiler is started with includeObjectsCollectedByMinorGC: false and
// includeObjectsCollectedByMajorGC: true, so a sample stays in the profile when its object survived
// young-generation GCs: promoted (then freed by a major GC) or still alive. Under load the first
// is by far the larger part, and it is what the peak RSS pays for between major GCs.
// PROMOTION_START_MS (default 4000) and PROMOTION_STOP_MS (default 10000) bound the window, from
// the process's start; with several Tollgate processes, each writes <PROMOTION_OUT>.<pid>.
if (process.argv.some((a) => a.endsWith('dist/main.js')) && process.env.PROMOTION_OUT) {
  const inspector = require('node:inspector');
  const fs = require('node:fs');
  const out = process.env.PROMOTION_OUT;
  const start = Number(process.env.PROMOTION_START_MS ?? 4000);
  const stop = Number(process.env.PROMOTION_STOP_MS ?? 10000);
  const session = new inspector.Session();
  session.connect();
  setTimeout(() => {
    session.post('HeapProfiler.enable');
    session.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: false,
    });
    setTimeout(() => {
      session.post('HeapProfiler.stopSampling', (err, result) => {
        if (err) return process.stderr.write(`promotion-preload: ${err.message}\n`);
        const file = fs.existsSync(out) ? `${out}.${process.pid}` : out;
        fs.writeFileSync(file, JSON.stringify(result.profile));
        process.stderr.write(`promotion-preload: wrote ${file}\n`);
      });
    }, stop - start).unref();
  }, start).unref();
}
