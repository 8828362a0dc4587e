// Stream positions, "<epoch>:<offset>" (docs/recovery.md). The server puts one on every
// message of a channel and on subscription_succeeded; a subscribe carrying the last one seen
// is resumed from there. Only positions of one channel compare, and only within one epoch:
// a new epoch means the old stream (and its history) is gone.

export const RESUMED_EVENT = 'tabcast:resumed';

function split(position) {
  const i = position.lastIndexOf(':');
  return [position.slice(0, i), Number(position.slice(i + 1))];
}

/** The position to resume from, given the one we have and one a tab offers: the later in the
 * same epoch. With different epochs one of them is from a lost stream and neither can be
 * ordered; keep what we have (the server answers `recovered: false` if it is the stale one). */
export function laterPosition(current, offered) {
  if (typeof offered !== 'string') return current;
  if (!current) return offered;
  const [epoch, offset] = split(current);
  const [offeredEpoch, offeredOffset] = split(offered);
  return epoch === offeredEpoch && offeredOffset > offset ? offered : current;
}

/** Whether a message at `position` is one we already had (`last` is the latest we had). */
export function alreadySeen(last, position) {
  if (!last) return false;
  const [epoch, offset] = split(last);
  const [messageEpoch, messageOffset] = split(position);
  return epoch === messageEpoch && messageOffset <= offset;
}
