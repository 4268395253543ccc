// SIGINT/SIGTERM during a run: stop at the next command, kill what is running, and let the
// engine tear down. A second signal during teardown is ignored: teardown takes well under a second.
// Should the run still not have ended after GIVE_UP_MS (a command that cannot be killed, a bug),
// nflab exits anyway: its watchdog sees it go without "done" and replays the run's journal.
const GIVE_UP_MS = 20_000;

export function interruptions(killRunning: () => void) {
  let received: NodeJS.Signals | undefined;
  const exitCode = () => (received === 'SIGTERM' ? 143 : 130);
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) return;
    received = sig;
    killRunning();
    setTimeout(() => {
      process.stderr.write(
        `nflab: the run did not stop within ${GIVE_UP_MS / 1000} s of ${sig}; exiting, the watchdog removes what is left\n`,
      );
      process.exit(exitCode());
    }, GIVE_UP_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: () => received !== undefined,
    exitCode,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
