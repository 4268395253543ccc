// SIGINT/SIGTERM during a run: stop at the next command, kill what is running, and let the
// engine tear down. A second signal during teardown is ignored: teardown takes well under a second.
export function interruptions(killRunning: () => void) {
  let received: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) return;
    received = sig;
    killRunning();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: () => received !== undefined,
    exitCode: () => (received === 'SIGTERM' ? 143 : 130),
    release: () => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); },
  };
}
