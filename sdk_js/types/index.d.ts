// Type definitions for @tabcast/browser: the pusher-js shaped API of the Tabcast SDK.

export type ConnectionState =
  | 'initialized' | 'connecting' | 'connected' | 'unavailable' | 'failed' | 'disconnected';

/** How this tab reaches the shared socket. */
export type Transport = 'shared-worker' | 'leader' | 'direct';

export interface AuthResult {
  auth: string;
  channel_data?: string;
  /** Base64 key for private-encrypted-* channels (from your server library). */
  shared_secret?: string;
}

export interface UserAuthResult {
  auth: string;
  user_data: string;
}

export type AuthCallback<T> = (error: Error | null, result: T | null) => void;

export interface EndpointOptions {
  /** POSTed as application/x-www-form-urlencoded with the page's cookies. */
  endpoint?: string;
  headers?: Record<string, string>;
  params?: Record<string, string>;
  headersProvider?: () => Record<string, string>;
  paramsProvider?: () => Record<string, string>;
}

export interface ChannelAuthorizationOptions extends EndpointOptions {
  customHandler?: (params: { socketId: string; channelName: string }, callback: AuthCallback<AuthResult>) => void;
}

export interface UserAuthenticationOptions extends EndpointOptions {
  customHandler?: (params: { socketId: string }, callback: AuthCallback<UserAuthResult>) => void;
}

export interface Options {
  /** Tabcast host[:port]; defaults to the host the SDK script was loaded from. */
  host?: string;
  /** Alias of host, as in pusher-js. */
  wsHost?: string;
  /** wss/https; defaults to true on https pages. */
  forceTLS?: boolean;
  /** Force one transport (no fallback). Default: SharedWorker, else leader tab, else direct. */
  transport?: Transport;
  /** Same-origin URL of a customer-hosted worker stub:
   *  `importScripts('https://<tabcast host>/sdk/v1/worker.js' + self.location.search);` */
  workerUrl?: string;
  /** pusher-js legacy option; default '/pusher/auth'. */
  authEndpoint?: string;
  auth?: { headers?: Record<string, string>; params?: Record<string, string> };
  channelAuthorization?: ChannelAuthorizationOptions;
  userAuthentication?: UserAuthenticationOptions;
  /** Milliseconds between reconnection attempts (exponential, jittered). Default 1000..30000. */
  backoff?: { min?: number; max?: number };
  /** Log the transport choice and the shared hub's own log (worker, leader) to this tab's console. */
  debug?: boolean;
  /** How long a transport has to answer before the next one is tried. Default 5000 ms. */
  handshakeTimeoutMs?: number;
}

export type EventCallback = (data: any, metadata: { user_id?: string; channel?: string }) => void;
export type GlobalCallback = (event: string, data: any, metadata?: { user_id?: string; channel?: string }) => void;

export interface Dispatcher {
  bind(event: string, callback: EventCallback, context?: unknown): this;
  unbind(event?: string, callback?: EventCallback, context?: unknown): this;
  bind_global(callback: GlobalCallback): this;
  unbind_global(callback?: GlobalCallback): this;
  unbind_all(): this;
}

export interface Channel extends Dispatcher {
  readonly name: string;
  subscribed: boolean;
  subscriptionPending: boolean;
  subscriptionCancelled: boolean;
  /** Client event (name must start with "client-"); false if not sent. Reaches the channel's
   *  other clients, this browser's other tabs included, never this tab. */
  trigger(event: string, data?: unknown): boolean;
}

/** Data of `channel.bind('tabcast:resumed', ...)`. After a reconnect (or a new shared hub) the
 *  channel was resumed from the last message the tabs had. `recovered: true`: the `missed`
 *  messages were delivered just before, in order. `false`: some may be lost; reload the
 *  channel's state from your backend. */
export interface Resumed {
  recovered: boolean;
  missed: number;
  /** Why not (server reasons, docs/recovery.md), or 'rejoined': this tab was away (back/forward cache,
   *  frozen) while the shared socket went on without it. */
  reason?: 'epoch_changed' | 'too_old' | 'too_many' | 'future' | 'invalid_position' | 'rejoined';
}

export interface Member {
  id: string;
  info: any;
}

export interface Members {
  count: number;
  myID: string | null;
  me: Member | null;
  members: Record<string, any>;
  get(id: string): Member | null;
  each(callback: (member: Member) => void): void;
}

export interface PresenceChannel extends Channel {
  members: Members;
}

/** Why the connection went to `failed` (it does not retry then). */
export type FailureReason =
  | 'origin_not_allowed' // this page's origin is not in the app's Allowed origins (dashboard)
  | 'app_not_found' | 'app_disabled' | 'over_connection_quota' | 'path_not_found' | 'unsupported_protocol'
  | 'unauthorized' | 'terminated' | 'refused'
  | 'unavailable'; // no transport could be opened

export interface ConnectionFailure {
  reason: FailureReason;
  /** The server's close code (4000-4099), when it refused the socket. */
  code?: number;
  message?: string;
}

/** Payload of `connection.bind('state_change', ...)`; `reason`/`failure` only when current is 'failed'. */
export interface StateChange {
  previous: ConnectionState;
  current: ConnectionState;
  reason?: FailureReason;
  failure?: ConnectionFailure;
}

export interface Connection extends Dispatcher {
  readonly state: ConnectionState;
  readonly socket_id: string | null;
  /** Set while the state is 'failed' (also passed to `bind('failed', ...)`). */
  readonly failure: ConnectionFailure | null;
}

export interface WatchlistEvent {
  name: 'online' | 'offline';
  user_ids: string[];
}

export interface User extends Dispatcher {
  user_data: any;
  /** Signed in with `user_data.watchlist`: `bind('online' | 'offline', (e: WatchlistEvent) => ...)`. */
  watchlist: Dispatcher;
}

export declare class Tabcast {
  constructor(key: string, options?: Options);
  readonly key: string;
  readonly connection: Connection;
  readonly user: User;
  /** The transport in use once connected. */
  readonly transport: Transport | null;
  subscribe(channelName: `presence-${string}`): PresenceChannel;
  subscribe(channelName: string): Channel;
  unsubscribe(channelName: string): void;
  channel(channelName: string): Channel | undefined;
  allChannels(): Channel[];
  bind(event: string, callback: EventCallback, context?: unknown): this;
  unbind(event?: string, callback?: EventCallback, context?: unknown): this;
  bind_global(callback: GlobalCallback): this;
  unbind_global(callback?: GlobalCallback): this;
  signin(): void;
  connect(): void;
  disconnect(): void;
}

export declare const SDK_VERSION: string;
export declare const PROTOCOL_VERSION: number;
export default Tabcast;
