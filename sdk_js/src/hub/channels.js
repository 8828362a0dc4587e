// The multiplexer: which tabs want which channel, and what the one socket must do about it.
// The socket subscribes once however many tabs want a channel and unsubscribes when the
// last one leaves; every server event goes to exactly the tabs that want its channel.
// Pure bookkeeping: all I/O goes through `io`, so it is unit-tested without a browser.

import { USER_CHANNEL, USER_EVENTS_PREFIX, isAuthorizedChannel } from '../shared/protocol.js';

const PENDING = 'pending';         // wanted, socket not connected yet
const AUTHORIZING = 'authorizing'; // a tab is asking the customer's auth endpoint
const SUBSCRIBING = 'subscribing'; // pusher:subscribe (or signin) sent, no answer yet
const SUBSCRIBED = 'subscribed';

export class ChannelTable {
  /**
   * @param {object} io
   * @param {(frame: object) => boolean} io.send       a frame to the server (false if not connected)
   * @param {(tab: string, msg: object) => void} io.toTab
   * @param {() => string|null} io.socketId          the socket's id while connected
   */
  constructor(io) {
    this.io = io;
    this.entries = new Map(); // channel -> {tabs, status, authTab, snapshot, me}
  }

  channelsOf(tab) {
    return [...this.entries].filter(([, e]) => e.tabs.has(tab)).map(([name]) => name);
  }

  add(tab, channel) {
    let entry = this.entries.get(channel);
    if (entry) {
      if (entry.tabs.has(tab)) return;
      entry.tabs.add(tab);
      if (entry.status === SUBSCRIBED) {
        this.io.toTab(tab, subscribedMessage(channel, entry));
        if (entry.watchlist?.size) this.io.toTab(tab, { t: 'watchlist', events: watchlistEvents(entry.watchlist) });
      }
      return;
    }
    entry = { tabs: new Set([tab]), status: PENDING, authTab: null, snapshot: null, me: null, sharedSecret: null };
    this.entries.set(channel, entry);
    if (this.io.socketId()) this._activate(channel, entry);
  }

  remove(tab, channel) {
    const entry = this.entries.get(channel);
    if (!entry || !entry.tabs.delete(tab)) return;
    if (entry.tabs.size === 0) {
      this.entries.delete(channel);
      if (channel !== USER_CHANNEL && (entry.status === SUBSCRIBING || entry.status === SUBSCRIBED)) {
        this.io.send({ event: 'pusher:unsubscribe', data: { channel } });
      }
    } else if (entry.status === AUTHORIZING && entry.authTab === tab) {
      this._activate(channel, entry); // the tab asked to authorize left: ask another one
    }
  }

  removeTab(tab) {
    for (const channel of this.channelsOf(tab)) this.remove(tab, channel);
  }

  /** The tab's answer to an `authorize` request. */
  authorized(tab, { channel, socket_id: socketId, auth, channel_data: channelData, shared_secret: sharedSecret }) {
    const entry = this.entries.get(channel);
    // A stale answer (the socket reconnected meanwhile) is dropped: a fresh request went out.
    if (!entry || entry.status !== AUTHORIZING || socketId !== this.io.socketId()) return;
    entry.status = SUBSCRIBING;
    if (channel === USER_CHANNEL) {
      this.io.send({ event: 'pusher:signin', data: { auth, user_data: channelData } });
      return;
    }
    entry.me = parseMe(channelData);
    // Encrypted channels: every tab on the channel needs the key to open its events.
    entry.sharedSecret = sharedSecret ?? null;
    const data = { channel, auth };
    if (channelData) data.channel_data = channelData;
    this.io.send({ event: 'pusher:subscribe', data });
  }

  authFailed(tab, { channel, error }) {
    const entry = this.entries.get(channel);
    if (!entry || entry.status !== AUTHORIZING) return;
    this._fail(channel, entry, error);
  }

  /** The socket is (re)connected: subscribe everything any tab wants. */
  connected() {
    for (const [channel, entry] of this.entries) this._activate(channel, entry);
  }

  /** The socket is gone: everything must be subscribed again on the next one. */
  disconnected() {
    for (const entry of this.entries.values()) {
      entry.status = PENDING;
      entry.authTab = null;
      entry.snapshot = null;
      entry.watchlist = null; // the server sends the whole status again after the next signin
    }
  }

  /** A client event from `tab`: to the server, and to the other tabs (the server does not
   * echo to the sending socket, and those tabs are other clients). Returns whether sent. */
  trigger(tab, { channel, event, data }) {
    const entry = this.entries.get(channel);
    if (!entry || entry.status !== SUBSCRIBED || !entry.tabs.has(tab)) return false;
    if (!this.io.send({ event, channel, data })) return false;
    const echo = { t: 'event', channel, event, data };
    if (entry.me) echo.user_id = entry.me.user_id;
    for (const other of entry.tabs) if (other !== tab) this.io.toTab(other, echo);
    return true;
  }

  /** A frame from the server. */
  frame(frame) {
    const { event, channel } = frame;
    if (event === 'pusher:signin_success') {
      this._succeeded(USER_CHANNEL, { user_data: parse(frame.data).user_data });
      return;
    }
    if (event === 'pusher_internal:watchlist_events') {
      this._watchlist(parse(frame.data));
      return;
    }
    if (!channel) {
      this._toAllTabs({ t: 'error', data: parse(frame.data) });
      return;
    }
    const target = channel.startsWith(USER_EVENTS_PREFIX) ? USER_CHANNEL : channel;
    const entry = this.entries.get(target);
    if (!entry) return;
    if (event === 'pusher_internal:subscription_succeeded') {
      this._succeeded(channel, parse(frame.data));
    } else if (event === 'pusher:subscription_error') {
      this._fail(channel, entry, parse(frame.data));
    } else {
      updateSnapshot(entry, event, frame.data);
      const msg = { t: 'event', channel, event, data: frame.data };
      if (frame.user_id !== undefined) msg.user_id = frame.user_id;
      for (const tab of entry.tabs) this.io.toTab(tab, msg);
    }
  }

  _activate(channel, entry) {
    const socketId = this.io.socketId();
    if (!socketId) return;
    if (isAuthorizedChannel(channel)) {
      entry.status = AUTHORIZING;
      entry.authTab = entry.tabs.values().next().value;
      this.io.toTab(entry.authTab, { t: 'authorize', channel, socket_id: socketId });
    } else {
      entry.status = SUBSCRIBING;
      this.io.send({ event: 'pusher:subscribe', data: { channel } });
    }
  }

  _succeeded(channel, data) {
    const entry = this.entries.get(channel);
    if (!entry) return;
    entry.status = SUBSCRIBED;
    entry.snapshot = data?.presence ? { ...data.presence, hash: { ...data.presence.hash } } : data;
    for (const tab of entry.tabs) this.io.toTab(tab, subscribedMessage(channel, entry));
  }

  // Watchlist events (signin with user_data.watchlist): to the signed-in tabs, and remembered
  // so that a tab joining later gets the current status.
  _watchlist(data) {
    const entry = this.entries.get(USER_CHANNEL);
    if (!entry || !Array.isArray(data?.events)) return;
    entry.watchlist ??= new Map();
    for (const { name, user_ids: ids } of data.events) {
      for (const id of ids || []) entry.watchlist.set(id, name);
    }
    for (const tab of entry.tabs) this.io.toTab(tab, { t: 'watchlist', events: data.events });
  }

  _fail(channel, entry, error) {
    this.entries.delete(channel);
    for (const tab of entry.tabs) this.io.toTab(tab, { t: 'sub_error', channel, error });
  }

  _toAllTabs(msg) {
    const tabs = new Set();
    for (const entry of this.entries.values()) for (const tab of entry.tabs) tabs.add(tab);
    for (const tab of tabs) this.io.toTab(tab, msg);
  }
}

// A tab joining a channel the socket already has gets the current presence members, kept
// up to date from member_added/member_removed.
function updateSnapshot(entry, event, rawData) {
  const presence = entry.snapshot?.hash ? entry.snapshot : null;
  if (!presence) return;
  const data = parse(rawData);
  const id = String(data.user_id);
  if (event === 'pusher_internal:member_added' && !(id in presence.hash)) {
    presence.hash[id] = data.user_info ?? null;
    presence.ids = [...presence.ids, data.user_id];
  } else if (event === 'pusher_internal:member_removed' && id in presence.hash) {
    delete presence.hash[id];
    presence.ids = presence.ids.filter((x) => String(x) !== id);
  } else {
    return;
  }
  presence.count = presence.ids.length;
}

function watchlistEvents(status) {
  const byName = new Map();
  for (const [id, name] of status) byName.set(name, [...(byName.get(name) || []), id]);
  return [...byName].map(([name, ids]) => ({ name, user_ids: ids }));
}

function subscribedMessage(channel, entry) {
  const snapshot = entry.snapshot?.hash ? { presence: entry.snapshot } : entry.snapshot;
  const msg = { t: 'subscribed', channel, data: snapshot, me: entry.me };
  if (entry.sharedSecret) msg.shared_secret = entry.sharedSecret;
  return msg;
}

function parseMe(channelData) {
  const data = parse(channelData);
  return data && data.user_id !== undefined ? { user_id: data.user_id, user_info: data.user_info ?? null } : null;
}

function parse(data) {
  if (typeof data !== 'string') return data ?? {};
  try {
    return JSON.parse(data);
  } catch {
    return {};
  }
}
