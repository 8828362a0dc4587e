// The hidden iframe on the Tabcast origin that lets a page on any origin reach a
// SharedWorker (whose script must be same-origin with its creator). The iframe creates the
// worker, holds the tab's liveness lock in the worker's storage partition, and hands the
// worker's port to the parent page, which then talks to the worker directly.

import { SDK_VERSION, tabLockName } from '../shared/protocol.js';
import { holdLock, whenReleased } from '../shared/locks.js';

const TAB_ID = /^[0-9a-f]{8,64}$/;
const HUB_LOCK = /^tabcast-hub:[0-9a-f]{8,64}$/;
const KEY = /^[A-Za-z0-9_-]{1,100}$/;
const connected = new Set();

addEventListener('message', async (event) => {
  // Only our direct parent may connect; its origin (set by the browser, not the message)
  // is where the port goes and what keeps one site's tabs off another site's worker.
  if (event.source !== parent || event.origin === 'null') return;
  const { type, tab, key, lock } = event.data || {};
  const reply = (msg, transfer) => parent.postMessage(msg, event.origin, transfer);
  if (type === 'tabcast:watch' && connected.has(tab) && HUB_LOCK.test(lock)) {
    // The worker's lifetime lock (named in its welcome) is in this frame's storage partition,
    // out of the page's sight: tell the page when the worker is gone, so it starts a new one.
    whenReleased(lock, () => reply({ type: 'tabcast:error', tab, error: 'the SharedWorker stopped' }));
    return;
  }
  if (type !== 'tabcast:connect' || !TAB_ID.test(tab) || !KEY.test(key) || connected.has(tab)) return;
  connected.add(tab);
  // The server refused this page's origin (the frame says so instead of creating a worker).
  const refused = document.documentElement.dataset.refused;
  if (refused) {
    const message = `Origin not allowed: ${event.origin}`;
    reply({ type: 'tabcast:error', tab, error: message, failure: { reason: refused, code: 4009, message } });
    return;
  }
  try {
    await holdLock(tabLockName(tab));
    const query = new URLSearchParams({ v: SDK_VERSION, key, origin: event.origin });
    const worker = new SharedWorker(`/sdk/v1/worker.js?${query}`, { name: `tabcast:${key}:${event.origin}` });
    worker.onerror = () => reply({ type: 'tabcast:error', tab, error: 'SharedWorker failed to start' });
    reply({ type: 'tabcast:port', tab }, [worker.port]);
  } catch (err) {
    reply({ type: 'tabcast:error', tab, error: String(err?.message || err) });
  }
});
