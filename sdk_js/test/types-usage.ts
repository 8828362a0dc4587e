// Compiled (not run) by `npm test`: the published types accept what a pusher-js user writes.
import Tabcast, {
  type ConnectionFailure, type Member, type PresenceChannel, type Resumed, type StateChange, type WatchlistEvent,
} from '../types/index.js';

const tc = new Tabcast('app-key', {
  host: 'realtime.example.com',
  authEndpoint: '/pusher/auth',
  transport: 'shared-worker',
  channelAuthorization: {
    customHandler: ({ socketId, channelName }, callback) => callback(null, { auth: `${socketId}:${channelName}` }),
  },
});
const orders = tc.subscribe('orders');
orders.bind('created', (data: { id: number }) => console.log(data.id));
orders.bind('tabcast:resumed', ({ recovered, missed, reason }: Resumed) => console.log(recovered, missed, reason));
const sent: boolean = tc.subscribe('private-chat').trigger('client-typing', { who: 'me' });
const room: PresenceChannel = tc.subscribe('presence-room');
room.bind('pusher:member_added', (member: Member) => console.log(member.id, room.members.count));
room.members.each((member) => console.log(member.info));
tc.connection.bind('state_change', ({ previous, current }: { previous: string; current: string }) => {
  console.log(previous, current, tc.connection.socket_id, tc.transport, sent);
});
tc.connection.bind('state_change', (change: StateChange) => {
  if (change.current === 'failed' && change.reason === 'origin_not_allowed') console.log(change.failure?.message);
});
tc.connection.bind('failed', (failure: ConnectionFailure) => console.log(failure.reason, failure.code));
const why: string | undefined = tc.connection.failure?.reason;
console.log(why);
tc.bind_global((event, data) => console.log(event, data));
tc.signin();
tc.user.bind('note', (data) => console.log(data));
tc.user.watchlist.bind('online', (e: WatchlistEvent) => console.log(e.user_ids));
tc.unsubscribe('orders');
tc.disconnect();
