// Removes the containers of one run, found by the run label nflab puts on every container it creates.
import Docker from 'dockerode';

export async function removeRunContainers(runId: string, docker = new Docker()): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`nflab.run=${runId}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  return list.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, ''));
}
