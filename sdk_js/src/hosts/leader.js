// Fallback where SharedWorker is missing: the tab holding a Web Lock is the leader and runs
// the hub; every tab (the leader included) talks to it over a BroadcastChannel. The browser
// releases the lock when the leader's document dies, so the next tab in the lock queue
// takes over at once (no timer-based election, so never two leaders).

import { Hub } from '../hub/hub.js';
import { lockWatcher } from '../shared/locks.js';
import { busName, leaderLockName } from '../shared/protocol.js';

export class LeaderElection {
  constructor(key) {
    this.key = key;
    this.abort = null;
    this.resign = null;
  }

  get isLeader() {
    return this.resign !== null;
  }

  /** Queue for leadership; `lead()` runs when this tab gets the lock. */
  start() {
    if (this.abort) return;
    this.abort = new AbortController();
    navigator.locks.request(leaderLockName(this.key), { signal: this.abort.signal }, () => this._lead())
      .catch(() => {}); // aborted by stop()
  }

  /** Leave the queue, or give up leadership (hub and socket closed, lock released). It
   * must run on pagehide(persisted): a leader in the back/forward cache would otherwise
   * keep the lock and strand every other tab without a socket. */
  stop() {
    this.abort?.abort();
    this.abort = null;
    this.resign?.();
  }

  _lead() {
    const bus = new BroadcastChannel(busName(this.key));
    const hub = new Hub({ watchTab: lockWatcher(navigator.locks) });
    bus.onmessage = (e) => {
      const { to, msg } = e.data || {};
      if (to === 'hub' && msg) hub.handle(msg, (reply) => bus.postMessage({ to: msg.tab, msg: reply }));
    };
    // A new leader knows no tabs yet: ask every tab to say hello with its channels.
    bus.postMessage({ to: '*', msg: { t: 'identify' } });
    return new Promise((resolve) => {
      this.resign = () => {
        this.resign = null;
        hub.close();
        bus.close();
        resolve();
      };
    });
  }
}
