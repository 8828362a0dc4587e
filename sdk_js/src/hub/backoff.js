// What to do when the server closes the socket, by Pusher close-code range.

export const STOP = 'stop';       // 4000-4099: refused; retrying with the same parameters is pointless
export const BACKOFF = 'backoff'; // 4100-4199 and anything unexpected (1006, network loss)
export const NOW = 'now';         // 4200-4299: the server asks us to reconnect at once

export function closeAction(code) {
  if (code >= 4000 && code <= 4099) return STOP;
  if (code >= 4200 && code <= 4299) return NOW;
  return BACKOFF;
}

// Why a refused connection failed, for `connection.bind('failed', ({reason}) => ...)`.
// The server's pusher:error message tells 4009's causes apart (consumer.websocket_connect).
const REFUSALS = {
  4001: 'app_not_found', 4003: 'app_disabled', 4004: 'over_connection_quota', 4005: 'path_not_found',
  4007: 'unsupported_protocol', 4009: 'unauthorized',
};

export function refusalReason(code, message = '') {
  if (code === 4009 && /^origin not allowed/i.test(message)) return 'origin_not_allowed';
  if (code === 4009 && /terminated|disconnected by the app/i.test(message)) return 'terminated';
  return REFUSALS[code] ?? 'refused';
}

// Exponential backoff with "equal jitter": half the ceiling fixed, half random, so a server
// restart does not get every browser back in the same millisecond.
export function backoffDelay(attempt, { min = 1000, max = 30000 } = {}, random = Math.random) {
  const ceiling = Math.min(max, min * 2 ** attempt);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
