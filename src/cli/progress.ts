// Signs of life on stderr while labs run (stdout stays the report): on a terminal a spinner line
// naming the lab and step with its elapsed time; in CI or when stderr is not a terminal, a plain
// timestamped line per lab and step (a CI log shows the run is alive, also with --json).
import type { RunEvent } from '../engine/run-lab.ts';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function progressReporter(
  stream: NodeJS.WriteStream = process.stderr,
  env = process.env,
): { onEvent: (e: RunEvent) => void; stop: () => void } {
  const spinner = stream.isTTY === true && !env.CI;
  return spinner ? spinnerReporter(stream) : lineReporter(stream);
}

function lineReporter(stream: NodeJS.WriteStream) {
  const stamp = () => new Date().toISOString().slice(11, 19);
  const line = (s: string) => stream.write(`[${stamp()}] ${s}\n`);
  return {
    onEvent: (e: RunEvent) => {
      switch (e.type) {
        case 'lab-start':
          line(`lab ${e.lab.id}: building (${e.lab.title}; run ${e.runId})`);
          break;
        case 'built':
          line(`lab ${e.lab.id}: topology built in ${e.ms} ms`);
          break;
        case 'step-start':
          line(`lab ${e.lab.id}: step ${e.index + 1}/${e.lab.steps.length}: ${e.title}`);
          break;
        case 'step-end':
          break;
        case 'lab-end':
          line(`lab ${e.lab.id}: ${e.report.status} in ${(e.report.durationMs / 1000).toFixed(1)} s`);
          break;
      }
    },
    stop: () => {},
  };
}

function spinnerReporter(stream: NodeJS.WriteStream) {
  let what = '';
  let since = Date.now();
  let frame = 0;
  let timer: NodeJS.Timeout | undefined;
  const clear = () => stream.write('\r\x1b[2K');
  const draw = () => {
    const width = Math.max(20, (stream.columns ?? 80) - 1);
    clear();
    stream.write(
      `${FRAMES[frame++ % FRAMES.length]} ${what} ${((Date.now() - since) / 1000).toFixed(0)} s`.slice(0, width),
    );
  };
  const show = (text: string) => {
    what = text;
    since = Date.now();
    timer ??= setInterval(draw, 100).unref();
    draw();
  };
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    clear();
  };
  return {
    onEvent: (e: RunEvent) => {
      // The spinner line is cleared before anything else reaches the terminal (the step lines on stdout).
      if (e.type === 'lab-start') show(`lab ${e.lab.id}: building`);
      else if (e.type === 'step-start') show(`lab ${e.lab.id}: step ${e.index + 1}/${e.lab.steps.length}: ${e.title}`);
      else stop();
    },
    stop,
  };
}
