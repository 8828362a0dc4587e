// Web Locks as a liveness signal: a tab holds its own lock for as long as it exists, and the
// hub queues for that lock, which the browser grants only once the tab is gone (closed,
// crashed or navigated away). MessagePort has no usable close event, so this is the signal.

import { tabLockName } from './protocol.js';

/** Take `name` and keep it until `release()` is called or the document dies.
 * Resolves once the lock is actually held, so a hub can never see it free by mistake. */
export function holdLock(name, locks = globalThis.navigator?.locks) {
  if (!locks) return Promise.resolve(() => {});
  return new Promise((acquired, failed) => {
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    locks.request(name, () => {
      acquired(release);
      return held;
    }).catch(failed);
  });
}

/** Call `onGone` once whoever holds `name` is gone; returns a function to stop waiting. */
export function whenReleased(name, onGone, locks = globalThis.navigator?.locks) {
  if (!locks) return () => {};
  const abort = new AbortController();
  locks.request(name, { signal: abort.signal }, () => onGone()).catch(() => {}); // catch: aborted
  return () => abort.abort();
}

/** A `watchTab(tab, onGone)` for the hub, or a no-op where Web Locks are missing (the
 * heartbeat then finds dead tabs, more slowly). */
export function lockWatcher(locks = globalThis.navigator?.locks) {
  if (!locks) return () => {};
  return (tab, onGone) => {
    whenReleased(tabLockName(tab), onGone, locks);
  };
}
