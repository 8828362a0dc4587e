// One Pusher protocol 7 WebSocket with pusher-js connection states, keep-alive pings and
// reconnection (by close-code range, exponential backoff with jitter). It knows nothing
// about tabs: the hub decides what to subscribe.

import { NOW, STOP, backoffDelay, closeAction, refusalReason } from './backoff.js';

const PONG_TIMEOUT_MS = 30000;
const PONG_NOT_RECEIVED = 4201;

export class PusherSocket {
  /**
   * @param {object} o
   * @param {string} o.url                 ws(s)://host/app/KEY?protocol=7...
   * @param {Function} o.onState           (previous, current) on every state change
   * @param {Function} o.onFrame           (frame) for every frame except connection bookkeeping
   * @param {Function} [o.WebSocket]       injectable for tests
   * @param {object} [o.timers]            {setTimeout, clearTimeout}, injectable for tests
   * @param {object} [o.backoff]           {min, max} milliseconds
   */
  constructor({ url, onState, onFrame, WebSocket = globalThis.WebSocket, timers = globalThis,
    random = Math.random, backoff = {}, activityTimeoutMs = 120000 }) {
    Object.assign(this, { url, onState, onFrame, WebSocket, timers, random, backoff, activityTimeoutMs });
    this.state = 'initialized';
    this.socketId = null;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.activityTimer = null;
    this.wanted = false;
    this.failure = null; // why the server refused us, once failed: {reason, code, message}
    this.refusal = null; // the pusher:error that came before the server closed the socket
  }

  connect() {
    this.wanted = true;
    if (this.ws || this.retryTimer) return;
    this.attempt = 0;
    this.failure = null;
    this._open();
  }

  disconnect() {
    this.wanted = false;
    this._clearTimers();
    const ws = this.ws;
    this.ws = null;
    this.socketId = null;
    if (ws) ws.close(1000, 'client disconnect');
    this._setState('disconnected');
  }

  /** Send a frame if connected; returns whether it went out. */
  send(frame) {
    if (this.state !== 'connected') return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Network came back (an `online` event): stop waiting out the backoff. */
  retryNow() {
    if (this.wanted && this.retryTimer) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this._open();
    }
  }

  _open() {
    this._setState('connecting');
    let ws;
    try {
      ws = new this.WebSocket(this.url);
    } catch {
      this._closed(null, 1006);
      return;
    }
    this.ws = ws;
    ws.onmessage = (e) => this._message(ws, e.data);
    ws.onclose = (e) => this._closed(ws, e.code);
  }

  _message(ws, text) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.event === 'pusher:connection_established') {
      const data = typeof frame.data === 'string' ? JSON.parse(frame.data) : frame.data;
      this.socketId = data.socket_id;
      if (data.activity_timeout) this.activityTimeoutMs = Math.min(this.activityTimeoutMs, data.activity_timeout * 1000);
      this.attempt = 0;
    }
    this._armActivityTimer(); // any frame proves the connection alive
    if (frame.event === 'pusher:connection_established') {
      this._setState('connected');
    } else if (frame.event === 'pusher:error') {
      // 4000-4099 (origin not allowed, unknown app...): the server closes with that code next.
      const data = typeof frame.data === 'string' ? parseJson(frame.data) : frame.data;
      if (data && typeof data === 'object' && closeAction(data.code) === STOP) this.refusal = data;
      this.onFrame(frame);
    } else if (frame.event === 'pusher:ping') {
      this.send({ event: 'pusher:pong', data: {} });
    } else if (frame.event !== 'pusher:pong') {
      this.onFrame(frame);
    }
  }

  _closed(ws, code) {
    if (ws !== this.ws) return; // an old socket we already replaced or closed ourselves
    this.ws = null;
    this.socketId = null;
    this._clearTimers();
    if (!this.wanted) return;
    const action = closeAction(code);
    const refusal = this.refusal;
    this.refusal = null;
    if (action === STOP) {
      this.wanted = false;
      const message = refusal?.code === code ? String(refusal.message ?? '') : '';
      this.failure = { reason: refusalReason(code, message), code, message };
      this._setState('failed');
      return;
    }
    const delay = action === NOW && this.state === 'connected'
      ? 0 : backoffDelay(this.attempt++, this.backoff, this.random);
    this._setState(delay === 0 ? 'connecting' : 'unavailable');
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this._open();
    }, delay);
  }

  // Silence for activity_timeout -> ping; no answer within PONG_TIMEOUT_MS -> the socket is
  // dead even if the OS has not noticed yet: drop it and reconnect.
  _armActivityTimer() {
    this.timers.clearTimeout(this.activityTimer);
    this.activityTimer = this.timers.setTimeout(() => {
      if (!this.send({ event: 'pusher:ping', data: {} })) return;
      this.activityTimer = this.timers.setTimeout(() => {
        const ws = this.ws;
        if (ws) ws.close(1000, 'pong not received');
        this._closed(ws, PONG_NOT_RECEIVED);
      }, PONG_TIMEOUT_MS);
    }, this.activityTimeoutMs);
  }

  _clearTimers() {
    this.timers.clearTimeout(this.activityTimer);
    this.timers.clearTimeout(this.retryTimer);
    this.activityTimer = this.retryTimer = null;
  }

  _setState(current) {
    const previous = this.state;
    if (previous === current) return;
    this.state = current;
    this.onState(previous, current);
  }
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
