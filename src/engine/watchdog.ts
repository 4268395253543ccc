// The watchdog: cleanup that happens even when nflab cannot run any code of its own any more
// (SIGKILL, the OOM killer, a crash in native code).
//
// Why a watchdog rather than namespaces that die with nflab (the "kernel reaper": namespaces held
// only by a process that dies with nflab): `nflab up`, the students' own commands, handouts and
// `nflab down` use `ip netns exec nfl-…`, and a named namespace is a bind mount under /run/netns that
// outlives every process. Docker containers and the detached TCP responders outlive nflab too. So
// something outside nflab has to remove them, and it must already be running when nflab dies.
//
// How: before a run records or creates anything, nflab starts `sh` in a session of its own (a
// Ctrl-C or SIGHUP aimed at nflab's terminal and process group does not reach it). Its standard
// input is a socket whose only other end belongs to nflab (nflab's later children never inherit it:
// node opens every descriptor close-on-exec). nflab writes "done" once the run is torn down or kept
// for `nflab up`. If the socket closes without "done" — the kernel closes it when nflab dies,
// however it dies — sh execs the reaper (reaper.ts), which replays the run's journal exactly as
// `nflab clean` does: namespaces and every process in them, containers, recorded processes.
// While it waits the watchdog costs one idle sh; node starts only when there is something to clean.
//
// The watchdog guards this machine only: with a remote executor the objects live elsewhere, and
// `nflab clean` on that machine remains the way to remove them.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { processStartTime, RUNTIME_DIR, type ProcessRef } from './journal.ts';

/** What the watchdog's shell does: wait for one line; anything but "done" (EOF included) reaps. */
const SCRIPT = 'IFS= read -r message; [ "$message" = done ] && exit 0; exec "$@"';

/** Where the reapers write what they removed (one line per run), for a person asking "what happened". */
export const WATCHDOG_LOG = join(RUNTIME_DIR, 'watchdog.log');

export interface Watchdog {
  /** The watchdog's process, for the run's journal. */
  ref: ProcessRef;
  /** The run is torn down or kept: the watchdog exits without touching anything. Idempotent. */
  done(): void;
}

export function startWatchdog(runId: string): Watchdog {
  // From the compiled bundle (scripts/build.mjs) the reaper is the bundle's reaper.mjs beside this
  // chunk (a URL without './', which the build leaves as it is). From the sources it is TypeScript:
  // loaded with the tsx that runs nflab itself, by absolute URL, whatever the current directory is.
  const reaperArgv = import.meta.url.endsWith('.ts')
    ? ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./reaper.ts', import.meta.url))]
    : [fileURLToPath(new URL('reaper.mjs', import.meta.url))];
  mkdirSync(RUNTIME_DIR, { recursive: true, mode: 0o700 });
  const log = openSync(WATCHDOG_LOG, 'a', 0o600);
  let child;
  try {
    child = spawn('sh', ['-c', SCRIPT, 'nflab-watchdog', process.execPath, ...reaperArgv, runId], {
      detached: true,
      stdio: ['pipe', log, log],
    });
  } finally {
    closeSync(log);
  }
  // Neither the child nor the socket may keep nflab's event loop alive. Without a watchdog (no sh)
  // the run goes on: `nflab clean` still covers it.
  child.on('error', () => {});
  child.unref();
  const socket = child.stdin as Socket;
  socket.on('error', () => {});
  socket.unref();
  const pid = child.pid ?? 0;
  let finished = false;
  return {
    ref: { pid, startTime: pid ? processStartTime(pid) : undefined, what: 'watchdog' },
    done() {
      if (finished) return;
      finished = true;
      // A write to a local socket with room in its buffer completes at once, before nflab exits.
      socket.end('done\n');
    },
  };
}
