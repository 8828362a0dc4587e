// Links from a tab to a hub. Each is {name, post(msg), close(), suspend?(), resume?(),
// watchHub?(lock)} and delivers the hub's messages to `onMessage`. Which one a tab uses is
// decided in transports.js.

import { Hub } from '../hub/hub.js';
import { LeaderElection } from '../hosts/leader.js';
import { whenReleased } from '../shared/locks.js';
import { SDK_VERSION, busName } from '../shared/protocol.js';

// A SharedWorker can die with its tabs' ports left open and silent: the worker holds a lock
// for its lifetime (hosts/worker.js), and its welcome names it for the tab to wait for.
const workerGone = () => new Error('the SharedWorker stopped');

function portLink(name, port, onMessage, cleanup = () => {}) {
  port.onmessage = (e) => onMessage(e.data);
  return {
    name,
    post: (msg) => port.postMessage(msg),
    close() {
      port.close();
      cleanup();
    },
  };
}

/** A SharedWorker whose script is same-origin with this page (the Tabcast origin itself,
 * or a customer-hosted stub given as `workerUrl`). The worker watches the page's tab lock. */
export async function openWorkerLink({ workerUrl, key, tabLock, onMessage, onFailure }) {
  await tabLock;
  const url = new URL(workerUrl, location.href);
  url.searchParams.set('v', SDK_VERSION); // a new SDK version gets a new worker
  const worker = new SharedWorker(url.href, { name: `tabcast:${key}` });
  worker.onerror = () => onFailure(new Error('SharedWorker failed to start'));
  let stopWatching = () => {};
  const link = portLink('shared-worker', worker.port, onMessage, () => stopWatching());
  link.watchHub = (lock) => {
    stopWatching();
    stopWatching = whenReleased(lock, () => onFailure(workerGone()));
  };
  return link;
}

/** A SharedWorker on the Tabcast origin, reached through a hidden iframe (for pages on
 * other origins with no file of ours to host). */
export function openFrameLink({ origin, key, tab, signal, onMessage, onFailure }) {
  return new Promise((resolve, reject) => {
    const iframe = document.createElement('iframe');
    // The page's origin lets the server answer "not allowed" instead of a frame CSP blocks silently.
    const query = new URLSearchParams({ v: SDK_VERSION, key, origin: location.origin });
    iframe.src = `${origin}/sdk/v1/frame.html?${query}`;
    iframe.title = 'Tabcast connection';
    iframe.setAttribute('aria-hidden', 'true');
    iframe.tabIndex = -1;
    iframe.style.cssText = 'display:none';
    const remove = () => {
      removeEventListener('message', listen);
      iframe.remove();
    };
    let link = null;
    function listen(event) {
      // Only our own iframe, on the Tabcast origin, speaks to us.
      if (event.origin !== origin || event.source !== iframe.contentWindow) return;
      const data = event.data || {};
      if (data.tab !== tab) return;
      if (data.type === 'tabcast:port' && event.ports[0] && !link) {
        link = portLink('shared-worker', event.ports[0], onMessage, remove);
        // The worker's lock is in the frame's storage partition: the frame waits for it.
        link.watchHub = (lock) => iframe.contentWindow?.postMessage({ type: 'tabcast:watch', tab, lock }, origin);
        resolve(link);
      } else if (data.type === 'tabcast:error') {
        const error = new Error(data.error || 'Tabcast frame failed');
        if (data.failure && typeof data.failure.reason === 'string') error.failure = data.failure;
        if (link) onFailure(error);
        else {
          remove();
          reject(error);
        }
      }
    }
    addEventListener('message', listen);
    // A frame the page may not embed (frame-ancestors) loads an error page that never answers.
    signal?.addEventListener('abort', () => {
      if (link) return;
      remove();
      reject(signal.reason);
    }, { once: true });
    iframe.addEventListener('load', () => {
      iframe.contentWindow.postMessage({ type: 'tabcast:connect', tab, key }, origin);
    }, { once: true });
    iframe.addEventListener('error', () => reject(new Error('Tabcast frame did not load')), { once: true });
    (document.body || document.documentElement).appendChild(iframe);
  });
}

/** Web Locks leader election + BroadcastChannel (SharedWorker missing or failing). */
export async function openLeaderLink({ key, tab, tabLock, onMessage }) {
  await tabLock;
  const election = new LeaderElection(key);
  let bus = null;
  const open = () => {
    bus = new BroadcastChannel(busName(key));
    bus.onmessage = (e) => {
      const { to, msg } = e.data || {};
      if ((to === tab || to === '*') && msg) onMessage(msg);
    };
    election.start();
  };
  const shut = () => {
    election.stop();
    bus?.close();
    bus = null;
  };
  open();
  return {
    name: 'leader',
    election,
    post: (msg) => bus?.postMessage({ to: 'hub', msg }),
    close: shut,
    suspend: shut,
    resume: open,
  };
}

/** One socket for this tab alone: the hub runs in the page. */
export function openDirectLink({ onMessage }) {
  const hub = new Hub();
  // Asynchronous both ways, like the other links, so no caller sees re-entrant callbacks.
  const toTab = (msg) => queueMicrotask(() => onMessage(msg));
  return {
    name: 'direct',
    post: (msg) => queueMicrotask(() => hub.handle(msg, toTab)),
    close: () => hub.close(),
  };
}
