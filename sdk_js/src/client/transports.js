// Which link a tab uses: SharedWorker, else a Web Locks leader tab, else its own socket.
// `options.transport` forces one (no fallback then).

import { openDirectLink, openFrameLink, openLeaderLink, openWorkerLink } from './links.js';

export const TRANSPORTS = ['shared-worker', 'leader', 'direct'];

export function candidateTransports(forced, env = globalThis) {
  if (forced) {
    if (!TRANSPORTS.includes(forced)) throw new Error(`Unknown transport "${forced}"; use one of ${TRANSPORTS}`);
    return [forced];
  }
  const list = [];
  if (typeof env.SharedWorker === 'function') list.push('shared-worker');
  if (env.navigator?.locks && typeof env.BroadcastChannel === 'function') list.push('leader');
  list.push('direct');
  return list;
}

/** Open the link for `name` (a promise); `ctx` = {options, tab, tabLock, signal, onMessage, onFailure}. */
export async function openTransport(name, { options, tab, tabLock, signal, onMessage, onFailure }) {
  const { key, httpOrigin, workerUrl } = options;
  const common = { key, tab, tabLock, signal, onMessage, onFailure };
  if (name === 'shared-worker') {
    if (typeof SharedWorker !== 'function') throw new Error('SharedWorker is not supported here');
    if (workerUrl) return openWorkerLink({ ...common, workerUrl });
    if (location.origin === httpOrigin) return openWorkerLink({ ...common, workerUrl: `${httpOrigin}/sdk/v1/worker.js` });
    return openFrameLink({ ...common, origin: httpOrigin });
  }
  if (name === 'leader') {
    if (!globalThis.navigator?.locks || typeof BroadcastChannel !== 'function') {
      throw new Error('Web Locks or BroadcastChannel are not supported here');
    }
    return openLeaderLink(common);
  }
  return openDirectLink(common);
}
