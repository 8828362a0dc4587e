// npm entry point: `import Tabcast from '@tabcast/browser'`.
export { Tabcast } from './client/tabcast.js';
export { Tabcast as default } from './client/tabcast.js';
export { SDK_VERSION, PROTOCOL_VERSION } from './shared/protocol.js';
