// The SharedWorker: one hub (and so one WebSocket) for every tab that connects to it.
// Loaded as /sdk/v1/worker.js, or imported by a customer-hosted one-line stub:
//   importScripts('https://realtime.example.com/sdk/v1/worker.js' + self.location.search);

import { Hub } from '../hub/hub.js';
import { lockWatcher } from '../shared/locks.js';

const hub = new Hub({ watchTab: lockWatcher(self.navigator.locks) });

self.onconnect = (event) => {
  const port = event.ports[0];
  const post = (msg) => port.postMessage(msg);
  port.onmessage = (e) => hub.handle(e.data, post);
};
