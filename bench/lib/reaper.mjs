// @ts-check
// Watchdog for the benchmark's child processes (nginx, redis-server, the gateways, the origin).
//
// run.mjs starts it first and writes "+<pid>" / "-<pid>" lines on its stdin as it starts and
// reaps children. When run.mjs goes away in any manner (normal exit, crash, Ctrl-C, SIGKILL) its
// end of the pipe closes, or its pid changes parent, and the reaper kills whatever is still
// registered: SIGTERM, then SIGKILL a second later. It also enforces a hard deadline on the whole
// run (argv[3], epoch ms), so nothing the bench started can outlive it by more than that.
// When the bench did not finish cleanly it also removes the run's temp dir (argv[4]).
import process from 'node:process';
import { rmSync } from 'node:fs';

const parentPid = Number(process.argv[2]);
const deadlineMs = Number(process.argv[3]);
const tmpDir = process.argv[4];
const pids = new Set();
let finishing = false;

// Ctrl-C reaches the whole foreground process group: stay alive long enough to clean up.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

/** @param {number} pid */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** @param {string} reason */
function finish(reason) {
  if (finishing) return;
  finishing = true;
  const left = [...pids].filter(alive);
  if (left.length > 0 && reason !== 'done') {
    process.stderr.write(`bench reaper: ${reason}; stopping ${left.length} child process(es): ${left.join(', ')}\n`);
  }
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  if (reason === 'deadline' && alive(parentPid)) {
    try {
      process.kill(parentPid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  setTimeout(
    () => {
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      if (reason !== 'done' && tmpDir && tmpDir.includes('tollgate-bench-')) {
        try {
          rmSync(tmpDir, { recursive: true, force: true });
        } catch {
          /* best effort */
        }
      }
      process.exit(0);
    },
    left.length > 0 ? 1000 : 0,
  );
}

let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (/** @type {string} */ chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, nl).trim();
    buffered = buffered.slice(nl + 1);
    const pid = Number(line.slice(1));
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (line[0] === '+') pids.add(pid);
    else if (line[0] === '-') pids.delete(pid);
  }
});
process.stdin.on('end', () => finish(pids.size > 0 ? 'the bench process went away' : 'done'));
process.stdin.on('error', () => finish('the bench process went away'));

setInterval(() => {
  if (process.ppid !== parentPid || !alive(parentPid)) finish('the bench process went away');
  else if (Date.now() > deadlineMs) finish('deadline');
}, 500);
