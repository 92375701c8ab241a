/**
 * What the HTTP layer needs from the rest of the daemon, as narrow interfaces: routes translate
 * and verify, then hand intents to the engine; they never touch Pulumi or decide capacity.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Followups } from '../notify/chat/followups.js';
import type { Metrics } from '../observe/metrics.js';
import type { StreamHub } from './stream.js';
import type { CertFetcher } from '../sources/sns.js';
import type { Lease, ReplicaSeen, SignalChange, Store } from '../store/store.js';
import type { Actor, Approval, Command, Pause, ScalingEvent, TargetState } from '../types.js';

/** The engine as the HTTP layer sees it. */
export interface EngineApi {
  /** Queues an operator command; resolves only once it is stored, with the queue's length. */
  command(command: Command): Promise<{ queued: number }>;
  /** Applies one delivery's signal changes and records its events; resolves once stored. */
  signals(change: SignalChange): Promise<void>;
  /** Sets (or with null, lifts) an API pause; resolves with the target's state once stored. */
  pause(name: string, pause: Pause | null): Promise<TargetState>;
  /** Records an event that ends no operation. */
  record(event: ScalingEvent): Promise<void>;
  /** One target's state, or null for an unknown name. */
  state(name: string): Promise<TargetState | null>;
  /** Every target's state, in config order. */
  states(): Promise<TargetState[]>;
  /** True once a drain has begun: POSTs are refused with 503. */
  isDraining(): boolean;
  /**
   * A person's verdict on a pending approval; resolves with the approval once stored. Rejects
   * with PS_APPROVAL_UNKNOWN, PS_APPROVAL_CLOSED (already decided or expired) or PS_DRAINING.
   */
  decideApproval(id: string, verdict: 'approve' | 'reject', actor: Actor): Promise<Approval>;
}

/** What `GET /api/v1/cluster` answers: this replica, the live replicas and the held leases. */
export interface ClusterView {
  /** This replica's id. */
  self: string;
  replicas: ReplicaSeen[];
  leases: Lease[];
}

/** Everything `buildApp` is given. */
export interface AppDeps {
  config: Readonly<Config>;
  engine: EngineApi;
  store: Pick<Store, 'listEvents' | 'rememberDelivery' | 'forgetDelivery' | 'listApprovals' | 'getApproval'>;
  logger: Logger;
  metrics: Metrics;
  /** New ids (UUIDs by default). */
  newId?: () => string;
  /** The clock (Date.now by default). */
  now?: () => number;
  /** The replicas and leases (`GET /api/v1/cluster`); without it the route answers for this daemon alone. */
  cluster?: { view(): Promise<ClusterView> };
  /** The live stream's hub (`GET /api/v1/stream`); without it the route is not served. */
  stream?: StreamHub;
  /** Chat plumbing: where slash commands' outcomes are reported, how Slack response URLs are posted to. */
  chat?: {
    followups?: Followups;
    respond?: (url: string, body: unknown) => Promise<void>;
  };
  /** SNS plumbing; defaults fetch over HTTPS (sns-client.ts). */
  sns?: {
    /**
     * Fetches a PEM certificate from an already-checked SNS URL (HTTPS by default). The routes
     * wrap it in the certificate cache, which also bounds the fetches in flight.
     */
    fetchCert?: CertFetcher;
    /** GETs an already-checked SubscribeURL. */
    confirmSubscription?: (url: string) => Promise<void>;
  };
}
