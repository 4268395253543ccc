// Removes the containers of one run, found by the run label nflab puts on every container it creates.
import Docker from 'dockerode';
import { readdirSync, readlinkSync } from 'node:fs';

export async function removeRunContainers(runId: string, docker = new Docker()): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`nflab.run=${runId}`] } });
  await Promise.all(
    list.map(async (c) => {
      // The run's observers enter a container's network namespace with nsenter (capture.ts), so they
      // are not in the container and survive its removal, holding the namespace: end them first.
      if (c.State === 'running') await killInNetnsOf(docker, c.Id);
      try {
        await docker.getContainer(c.Id).remove({ force: true });
      } catch (err) {
        // Already gone (404), or being removed by the watchdog and `nflab clean` at once (409).
        const status = (err as { statusCode?: number }).statusCode;
        if (status !== 404 && status !== 409) throw err;
      }
    }),
  );
  return list.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, ''));
}

async function killInNetnsOf(docker: Docker, id: string): Promise<void> {
  let pid: number;
  try {
    pid = (await docker.getContainer(id).inspect()).State.Pid;
  } catch {
    return;
  }
  if (!pid) return;
  let netns: string;
  try {
    netns = readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return;
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === netns) process.kill(Number(entry), 'SIGKILL');
    } catch {
      /* ended meanwhile */
    }
  }
}
