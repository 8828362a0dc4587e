// The hub owns the one socket and the tabs sharing it. The same class runs in a
// SharedWorker, in the elected leader tab, or in the page itself (one socket per tab); the
// host only wires `handle(msg, post)` to its message channel.

import {
  HEARTBEAT_MS, MISSED_PINGS_LIMIT, PROTOCOL_VERSION, TABS_EVENT, randomId,
} from '../shared/protocol.js';
import { ChannelTable } from './channels.js';
import { PusherSocket } from './socket.js';

export class Hub {
  /**
   * @param {object} [o]
   * @param {(tab: string, onGone: Function) => void} [o.watchTab]  calls onGone when the tab dies
   * @param {object} [o.socketOptions]  passed to PusherSocket (WebSocket, timers, backoff...)
   * @param {string} [o.lock]  a Web Lock the host holds for the hub's lifetime (a worker's):
   *   named in the welcome, so that tabs learn at once when the hub is gone
   */
  constructor({ watchTab = () => {}, socketOptions = {}, timers = globalThis, lock = null } = {}) {
    this.epoch = randomId(); // a new hub (e.g. a restarted worker) has a new epoch
    this.lock = lock;
    this.watchTab = watchTab;
    this.socketOptions = socketOptions;
    this.timers = timers;
    this.url = null;
    this.socket = null;
    this.tabs = new Map(); // tab -> {post, suspended, missed, welcomed, debug}
    this.watched = new Set(); // tabs whose Web Lock we queued for (at most once each)
    this.reportedTabs = null;
    this.table = new ChannelTable({
      send: (frame) => this.socket?.send(frame) ?? false,
      toTab: (tab, msg) => this._post(tab, msg),
      socketId: () => (this.socket?.state === 'connected' ? this.socket.socketId : null),
    });
    this.heartbeat = timers.setInterval(() => this._heartbeat(), HEARTBEAT_MS);
    // The network is back: no need to wait out the current backoff delay.
    this.onOnline = () => this.socket?.retryNow();
    globalThis.addEventListener?.('online', this.onOnline);
  }

  /** A message from a tab; `post` answers that tab (used when it says hello). */
  handle(msg, post) {
    if (!msg || typeof msg.t !== 'string' || typeof msg.tab !== 'string') return;
    if (msg.t === 'hello') {
      this._hello(msg, post);
      return;
    }
    const tab = this.tabs.get(msg.tab);
    if (!tab || tab.suspended) {
      // We do not know this tab (we restarted, or dropped it as dead): ask it to resync.
      if (msg.t !== 'bye' && msg.t !== 'suspend') post?.({ t: 'identify' });
      return;
    }
    tab.missed = 0;
    switch (msg.t) {
      case 'subscribe': this.table.add(msg.tab, msg.channel); break;
      case 'unsubscribe': this.table.remove(msg.tab, msg.channel); break;
      case 'authorized': this.table.authorized(msg.tab, msg); break;
      case 'auth_failed': this.table.authFailed(msg.tab, msg); break;
      case 'trigger': this.table.trigger(msg.tab, msg); break;
      case 'suspend': this._suspend(msg.tab); break;
      case 'bye': this.drop(msg.tab, 'said bye'); break;
      default: break; // 'pong' only proves the tab is alive
    }
  }

  /** Forget a tab (it closed, or stopped answering pings). */
  drop(tabId, why) {
    if (!this.tabs.delete(tabId)) return;
    this._log(`tab ${tabId} dropped: ${why}`);
    this.table.removeTab(tabId);
    this._tabsChanged();
  }

  /** Stop everything (a leader tab giving up leadership). */
  close() {
    this.timers.clearInterval(this.heartbeat);
    globalThis.removeEventListener?.('online', this.onOnline);
    this.socket?.disconnect();
    this.tabs.clear();
  }

  // A hello registers a tab, or resyncs a known one: its channel list is the truth.
  _hello(msg, post) {
    if (msg.v !== PROTOCOL_VERSION || (this.url && msg.url !== this.url)) {
      post({ t: 'mismatch', v: PROTOCOL_VERSION, url: this.url });
      return;
    }
    if (!this.url) {
      this.url = msg.url;
      this.backoff = msg.backoff; // the first tab's reconnection settings apply to the shared socket
    }
    const known = this.tabs.get(msg.tab);
    // Not posted to until welcomed: the welcome carries the current state itself.
    this.tabs.set(msg.tab, { post, suspended: false, missed: 0, welcomed: false, debug: msg.debug === true });
    if (known?.suspended === false) {
      const wanted = new Set(msg.channels);
      for (const channel of this.table.channelsOf(msg.tab)) {
        if (!wanted.has(channel)) this.table.remove(msg.tab, channel);
      }
    }
    if (!this.watched.has(msg.tab)) {
      this.watched.add(msg.tab);
      this.watchTab(msg.tab, () => this.drop(msg.tab, 'its lock was released (closed or crashed)'));
    }
    // A new tab is a new page load: like pusher-js, it tries again after a refusal (4000-4099).
    if (!known && this.socket?.state === 'failed') this.socket.connect();
    this._tabsChanged(); // creates or wakes the socket, so the welcome carries a live state
    const welcome = { t: 'welcome', v: PROTOCOL_VERSION, epoch: this.epoch, ...this._stateMessage() };
    if (this.lock) welcome.lock = this.lock;
    post(welcome);
    this.tabs.get(msg.tab).welcomed = true;
    // A tab's positions matter only to a hub that does not have the channel live (see channels.js).
    const positions = msg.positions && typeof msg.positions === 'object' ? msg.positions : {};
    for (const channel of msg.channels) {
      const position = Object.hasOwn(positions, channel) && typeof positions[channel] === 'string' ? positions[channel] : null;
      this.table.add(msg.tab, channel, position);
    }
    this._log(`tab ${msg.tab} ${known ? 'resynced' : 'joined'} with ${msg.channels.length} channel(s); `
      + `${this._activeTabs()} live tab(s), socket ${this._stateMessage().current}`);
  }

  // A tab going into the back/forward cache: keep its port but never post to it (that would
  // evict it from the cache) and drop its channel interest; it resyncs with a hello on return.
  _suspend(tabId) {
    this._log(`tab ${tabId} suspended (back/forward cache or frozen)`);
    this.tabs.get(tabId).suspended = true;
    this.table.removeTab(tabId);
    this._tabsChanged();
  }

  _activeTabs() {
    let n = 0;
    for (const tab of this.tabs.values()) if (!tab.suspended) n += 1;
    return n;
  }

  _tabsChanged() {
    const active = this._activeTabs();
    if (active === 0) {
      if (this.socket && this.socket.state !== 'disconnected') this.socket.disconnect();
      this.reportedTabs = null;
      return;
    }
    if (!this.socket) {
      this.socket = new PusherSocket({
        url: this.url,
        backoff: this.backoff,
        onState: (previous, current) => this._socketState(previous, current),
        onFrame: (frame) => this.table.frame(frame),
        ...this.socketOptions,
      });
    }
    if (this.socket.state === 'initialized' || this.socket.state === 'disconnected') this.socket.connect();
    this._reportTabs();
  }

  _reportTabs() {
    const active = this._activeTabs();
    if (active !== this.reportedTabs && this.socket?.send({ event: TABS_EVENT, data: { tabs: active } })) {
      this.reportedTabs = active;
    }
  }

  _socketState(previous, current) {
    this._log(`socket ${previous} -> ${current}${current === 'connected' ? ` (${this.socket.socketId})` : ''}`);
    if (current === 'connected') {
      this.reportedTabs = null;
      this._reportTabs();
      this.table.connected();
    } else if (previous === 'connected') {
      this.table.disconnected();
    }
    const msg = { t: 'state', previous, ...this._stateMessage() };
    for (const tabId of this.tabs.keys()) this._post(tabId, msg);
  }

  _stateMessage() {
    const state = this.socket?.state ?? 'initialized';
    const msg = { current: state, socket_id: state === 'connected' ? this.socket.socketId : null };
    if (state === 'failed' && this.socket.failure) msg.failure = this.socket.failure; // why it was refused
    return msg;
  }

  _heartbeat() {
    for (const [tabId, tab] of this.tabs) {
      if (tab.suspended) continue;
      if (tab.missed >= MISSED_PINGS_LIMIT) {
        this.drop(tabId, `missed ${MISSED_PINGS_LIMIT} heartbeats`);
      } else {
        tab.missed += 1;
        this._post(tabId, { t: 'ping' });
      }
    }
  }

  _post(tabId, msg) {
    const tab = this.tabs.get(tabId);
    if (!tab || tab.suspended || !tab.welcomed) return;
    try {
      tab.post(msg);
    } catch {
      this.drop(tabId, 'its port is gone');
    }
  }

  // Shared workers have no DevTools in some browsers: tabs that ask (debug: true) get the
  // hub's log mirrored into their console.
  _log(text) {
    for (const [tabId, tab] of this.tabs) if (tab.debug) this._post(tabId, { t: 'log', text });
  }
}
