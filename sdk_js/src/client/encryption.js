// End-to-end encrypted channels (private-encrypted-*), as pusher-js does them: the
// customer's auth endpoint hands the tab a per-channel shared secret, the server only
// relays {nonce, ciphertext}, and each tab opens it with NaCl secretbox (XSalsa20-Poly1305).

import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';

export const isEncryptedChannel = (name) => name.startsWith('private-encrypted-');

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Decrypt an event's data with the channel's base64 shared secret; throws if it cannot. */
export function decryptEventData(sharedSecret, data) {
  const payload = typeof data === 'string' ? JSON.parse(data) : data;
  if (!payload?.nonce || !payload?.ciphertext) throw new Error('Encrypted event without nonce/ciphertext');
  let opened;
  try {
    opened = xsalsa20poly1305(fromBase64(sharedSecret), fromBase64(payload.nonce))
      .decrypt(fromBase64(payload.ciphertext));
  } catch {
    throw new Error('Could not decrypt the event (wrong or rotated shared secret)');
  }
  return new TextDecoder().decode(opened);
}
