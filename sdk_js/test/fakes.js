// Test doubles: a manual clock and a WebSocket the test plays the server for.

export class FakeTimers {
  constructor() {
    this.now = 0;
    this.nextId = 1;
    this.pending = new Map(); // id -> {at, fn, every}
  }

  setTimeout(fn, ms = 0) {
    const id = this.nextId++;
    this.pending.set(id, { at: this.now + ms, fn, every: null });
    return id;
  }

  setInterval(fn, ms) {
    const id = this.nextId++;
    this.pending.set(id, { at: this.now + ms, fn, every: ms });
    return id;
  }

  clearTimeout(id) {
    this.pending.delete(id);
  }

  clearInterval(id) {
    this.pending.delete(id);
  }

  /** Advance the clock, running every timer that falls due, in order. */
  tick(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const [id, t] of this.pending) if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
      if (!next) break;
      const [id, timer] = next;
      this.now = timer.at;
      if (timer.every) timer.at += timer.every;
      else this.pending.delete(id);
      timer.fn();
    }
    this.now = end;
  }
}

export function fakeWebSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closedByClient = null;
      sockets.push(this);
    }

    send(text) {
      this.sent.push(JSON.parse(text));
    }

    close(code) {
      this.closedByClient = code ?? 1000;
    }

    // --- the test plays the server ---
    establish(socketId = '1.1', activityTimeout = 120) {
      this.receive({ event: 'pusher:connection_established',
        data: JSON.stringify({ socket_id: socketId, activity_timeout: activityTimeout }) });
    }

    receive(frame) {
      this.onmessage({ data: JSON.stringify(frame) });
    }

    serverClose(code) {
      this.onclose({ code });
    }
  }
  return { FakeWebSocket, sockets };
}

/** An io for ChannelTable that records what it was asked to do. */
export function recordingIo(socketId = '1.1') {
  const io = {
    socket: socketId,
    frames: [],
    messages: [], // [tab, msg]
    send: (frame) => {
      if (!io.socket) return false;
      io.frames.push(frame);
      return true;
    },
    toTab: (tab, msg) => io.messages.push([tab, msg]),
    socketId: () => io.socket,
    to: (tab) => io.messages.filter(([t]) => t === tab).map(([, m]) => m),
    clear: () => {
      io.frames.length = 0;
      io.messages.length = 0;
    },
  };
  return io;
}
