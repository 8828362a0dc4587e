// The tab <-> hub message protocol, shared by every host (SharedWorker, leader tab, in-page).
// Bump PROTOCOL_VERSION on any incompatible change: a tab and a hub that disagree refuse to
// talk (the tab then falls back to another transport) instead of talking past each other.

/* global __TABCAST_VERSION__ */
export const SDK_VERSION = typeof __TABCAST_VERSION__ === 'string' ? __TABCAST_VERSION__ : '0.0.0-dev';
export const PROTOCOL_VERSION = 1;

// Pseudo-channel for `signin`: it is reference-counted and re-authorized like a channel.
export const USER_CHANNEL = '#user';
export const USER_EVENTS_PREFIX = '#server-to-user-';

// Tabcast extension frame: how many logical tabs share this socket (metering).
export const TABS_EVENT = 'tabcast:tabs';

// The hub pings every live tab; a tab that misses MISSED_PINGS_LIMIT pings in a row is
// dropped. Counted in pings, not wall time, because a hidden leader tab's timers are
// throttled to about once a minute and must not make every other tab look dead.
export const HEARTBEAT_MS = 5000;
export const MISSED_PINGS_LIMIT = 3;

// Lock names (Web Locks): one held by each tab for its lifetime, one by the leader.
export const tabLockName = (tabId) => `tabcast-tab:${tabId}`;
// Held by a SharedWorker for its lifetime (see hosts/worker.js).
export const hubLockName = (id) => `tabcast-hub:${id}`;
export const leaderLockName = (key) => `tabcast-leader:${key}:${PROTOCOL_VERSION}`;
export const busName = (key) => `tabcast:${key}:${PROTOCOL_VERSION}`;

export function isAuthorizedChannel(channel) {
  return channel === USER_CHANNEL || channel.startsWith('private-') || channel.startsWith('presence-');
}

export function randomId() {
  const bytes = new Uint8Array(9);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
