// What a step sends and observes, from its checks: the one list the engine runs and show,
// handouts and exported scripts print.
import type { Step, Traffic } from '../lab/types.ts';
import { trafficKey } from '../traffic/run.ts';
import { checkNeeds, checkTraffic } from './registry.ts';
import { distinctRequests, type ObservationRequest, type RequestOf, type RequestType } from './observations.ts';

/** Traffic a step sends: its explicit `send` list, then the traffic of its checks, each once. */
export function stepTraffic(step: Step): Traffic[] {
  const all = [...(step.send ?? []), ...(step.expect ?? []).flatMap(checkTraffic)];
  const seen = new Set<string>();
  return all.filter((t) => !seen.has(trafficKey(t)) && seen.add(trafficKey(t)));
}

/** Every observation a step's checks need, without its traffic. */
export function stepRequests(step: Step): ObservationRequest[] {
  return (step.expect ?? []).flatMap(checkNeeds).filter((r) => r.type !== 'traffic');
}

/** The step's distinct requests of one type, in the order its checks ask for them. */
export function stepRequestsOf<T extends RequestType>(step: Step, type: T): RequestOf<T>[] {
  return distinctRequests(stepRequests(step), type);
}
