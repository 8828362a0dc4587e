// The multiplexer: which tabs want which channel, and what the one socket must do about it.
// The socket subscribes once however many tabs want a channel and unsubscribes when the
// last one leaves; every server event goes to exactly the tabs that want its channel.
// Pure bookkeeping: all I/O goes through `io`, so it is unit-tested without a browser.
//
// Resume (docs/recovery.md): the table keeps the latest position of each channel and, after a
// reconnect, subscribes with it, once for all the tabs that were on the channel. The server
// then replays what was missed and says `tabcast:resumed`; both go to those tabs only. A tab
// that joined meanwhile ("fresh") missed nothing: it starts from the live position, as any
// new subscription does. A tab also hands its own last position to a hub that does not have
// the channel live (a new leader, a restarted worker), so no hub change loses messages.

import { RESUMED_EVENT, alreadySeen, laterPosition } from '../shared/positions.js';
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
    // channel -> {tabs, status, authTab, snapshot, me, sharedSecret, watchlist,
    //             position, resuming, liveFrom, fresh} (resume fields: see _subscribe)
    this.entries = new Map();
  }

  channelsOf(tab) {
    return [...this.entries].filter(([, e]) => e.tabs.has(tab)).map(([name]) => name);
  }

  /** `tab` wants `channel`; `position` is the last one the tab had (a hello to a new hub). */
  add(tab, channel, position = null) {
    let entry = this.entries.get(channel);
    if (entry) {
      if (entry.tabs.has(tab)) return;
      entry.tabs.add(tab);
      const caughtUp = entry.status === SUBSCRIBED && !entry.resuming;
      if (!caughtUp) {
        const subscribeSent = entry.status === SUBSCRIBING || entry.status === SUBSCRIBED;
        if (position && !subscribeSent) {
          entry.position = laterPosition(entry.position, position);
        } else if (!position && (entry.position || entry.resuming)) {
          // The socket will resume (or is resuming) from before this tab came: not its messages.
          (entry.fresh ??= new Set()).add(tab);
        }
      }
      if (entry.status === SUBSCRIBED) {
        this.io.toTab(tab, subscribedMessage(channel, entry, tab));
        if (entry.watchlist?.size) this.io.toTab(tab, { t: 'watchlist', events: watchlistEvents(entry.watchlist) });
        // The tab was away (back/forward cache, dropped while frozen, late to a new hub) while
        // the socket went on without it: the socket cannot replay for one tab, so say so.
        if (caughtUp && position && entry.position && !alreadySeen(position, entry.position)) {
          const lost = JSON.stringify({ recovered: false, missed: 0, reason: 'rejoined' });
          this.io.toTab(tab, { t: 'event', channel, event: RESUMED_EVENT, data: lost, position: entry.position });
        }
      }
      return;
    }
    entry = { tabs: new Set([tab]), status: PENDING, authTab: null, snapshot: null, me: null, sharedSecret: null,
      position: channel === USER_CHANNEL ? null : laterPosition(null, position), resuming: false, liveFrom: null,
      fresh: null };
    this.entries.set(channel, entry);
    if (this.io.socketId()) this._activate(channel, entry);
  }

  remove(tab, channel) {
    const entry = this.entries.get(channel);
    if (!entry || !entry.tabs.delete(tab)) return;
    entry.fresh?.delete(tab);
    if (entry.tabs.size === 0) {
      this.entries.delete(channel); // its position too: a later subscribe starts from now
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
    this._subscribe(entry, data);
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

  /** The socket is gone: everything must be subscribed again on the next one. Positions (and
   * fresh tabs) are kept: the next subscribe resumes from where the tabs were. */
  disconnected() {
    for (const entry of this.entries.values()) {
      entry.status = PENDING;
      entry.resuming = false;
      entry.liveFrom = null;
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
      this._succeeded(channel, parse(frame.data), frame.position);
    } else if (event === 'pusher:subscription_error') {
      this._fail(channel, entry, parse(frame.data));
    } else if (event === RESUMED_EVENT) {
      this._resumed(channel, entry, frame.data);
    } else {
      updateSnapshot(entry, event, frame.data);
      const msg = { t: 'event', channel, event, data: frame.data };
      if (frame.user_id !== undefined) msg.user_id = frame.user_id;
      if (frame.position !== undefined && target === channel) {
        msg.position = frame.position;
        entry.position = frame.position;
      }
      // Fresh tabs only exist while the socket resumes: every event until `tabcast:resumed` is a replay.
      for (const tab of entry.tabs) if (!entry.fresh?.has(tab)) this.io.toTab(tab, msg);
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
      this._subscribe(entry, { channel });
    }
  }

  // pusher:subscribe, resuming from the channel's position if it has one. `resuming` lasts
  // until the server's `tabcast:resumed` (or the next disconnect).
  _subscribe(entry, data) {
    entry.resuming = Boolean(entry.position);
    this.io.send({ event: 'pusher:subscribe', data: entry.resuming ? { ...data, position: entry.position } : data });
  }

  _succeeded(channel, data, position) {
    const entry = this.entries.get(channel);
    if (!entry) return;
    entry.status = SUBSCRIBED;
    entry.snapshot = data?.presence ? { ...data.presence, hash: { ...data.presence.hash } } : data;
    if (entry.resuming && position) {
      // The replay follows: keep our position (a drop mid-replay resumes from the last one
      // replayed). Live messages start after `position`; fresh tabs start there.
      entry.liveFrom = position;
    } else {
      // A plain subscribe, or a server that does not resume (history off): nothing to replay.
      entry.resuming = false;
      entry.fresh = null;
      entry.position = channel === USER_CHANNEL ? null : position ?? null;
    }
    for (const tab of entry.tabs) this.io.toTab(tab, subscribedMessage(channel, entry, tab));
  }

  // The end of a replay (or a gap the server could not repair): to every tab that was on the
  // channel before. Not recovered: live messages follow from the subscription's position.
  _resumed(channel, entry, rawData) {
    if (entry.resuming && entry.liveFrom && parse(rawData).recovered === false) entry.position = entry.liveFrom;
    const fresh = entry.fresh;
    entry.resuming = false;
    entry.liveFrom = null;
    entry.fresh = null;
    const msg = { t: 'event', channel, event: RESUMED_EVENT, data: rawData };
    if (entry.position) msg.position = entry.position;
    for (const tab of entry.tabs) if (!fresh?.has(tab)) this.io.toTab(tab, msg);
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

// The tab's starting position: where the socket is in the stream (a resume replays from
// there), or the live position for a fresh tab, which gets no replay.
function subscribedMessage(channel, entry, tab) {
  const snapshot = entry.snapshot?.hash ? { presence: entry.snapshot } : entry.snapshot;
  const msg = { t: 'subscribed', channel, data: snapshot, me: entry.me };
  if (entry.sharedSecret) msg.shared_secret = entry.sharedSecret;
  const position = entry.fresh?.has(tab) ? entry.liveFrom : entry.position;
  if (position) msg.position = position;
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
