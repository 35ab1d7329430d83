/**
 * A link simulator: a user-space TCP proxy that behaves like the mobile unit's 3G/4G link, for tests and bench
 * scripts. Point a client at `link.host:link.port` and it reaches `target` through a link with
 *
 * - a bandwidth limit: one token bucket per direction shared by every connection through the link (one radio),
 *   with small bursts, and backpressure all the way (the proxy pauses reading; it never buffers without bound);
 * - a one-way latency added to every chunk (order kept), and to the connection's set-up;
 * - cuts, now (`cut()`) or every `cutEveryMs`: `reset` tears both sockets down with a TCP reset; `blackhole` stops
 *   forwarding and stops reading, as a dead link does, leaving both ends to find out with their own timeouts;
 * - a change of address (`changeAddress()`): everything is cut and later connections reach the target from a new
 *   local address (127.0.0.2, .3, …), so the server sees a new client IP — a trailer on a new mast.
 *
 * Cuts affect only the connections open at that moment; new connections go through (a reconnected link).
 * For a command-line proxy in front of a running hub, see bench/link.ts.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export type CutMode = 'reset' | 'blackhole';
export type Direction = 'up' | 'down' | 'both';

export interface LinkOptions {
  target: { host: string; port: number };
  /** Bits per second each way (undefined = unlimited). `upBitsPerSecond`/`downBitsPerSecond` override it. */
  bitsPerSecond?: number;
  /** Client → target ("upload", the gateway's pushes). */
  upBitsPerSecond?: number;
  /** Target → client. */
  downBitsPerSecond?: number;
  /** One-way delay added to each chunk (and to connection set-up); order is kept. */
  latencyMs?: number;
  /** Every N ms, all open connections are cut (with `cutMode`). */
  cutEveryMs?: number;
  /** reset (default): destroy both sockets with a TCP reset. blackhole: stop forwarding, keep the sockets open. */
  cutMode?: CutMode;
  /** 0 (default): any free port. */
  listenPort?: number;
  /** 127.0.0.1 by default. */
  listenHost?: string;
  /**
   * The local addresses changeAddress() moves through, in order. By default 127.0.0.2 … 127.0.0.254 when the target
   * is an IPv4 loopback address (or localhost); there is no default for other targets.
   */
  localAddresses?: string[];
}

export interface LinkStats {
  /** Connections accepted, in all. */
  connections: number;
  /** Connections open now (including blackholed ones not yet closed). */
  readonly open: number;
  /** Cut events (cut(), each cutEveryMs, changeAddress()), whether or not any connection was open. */
  cuts: number;
  /** Connections cut, in all. */
  connectionsCut: number;
  /** Bytes delivered client → target. */
  bytesUp: number;
  /** Bytes delivered target → client. */
  bytesDown: number;
}

export interface Link {
  readonly port: number;
  readonly host: string;
  /** The local address upstream connections come from now (undefined: the system's choice, 127.0.0.1 for loopback). */
  readonly localAddress: string | undefined;
  /** Cuts every open connection now, with the link's cut mode or the one given. */
  cut(mode?: CutMode): void;
  /** Sets the rate each way (or one way); undefined = unlimited. Applies at once, to open connections too. */
  setRate(bitsPerSecond: number | undefined, direction?: Direction): void;
  /** Cuts everything; later upstream connections come from the next local address. */
  changeAddress(): void;
  readonly stats: Readonly<LinkStats>;
  close(): Promise<void>;
}

/** Bursts are at most 16 KiB or 50 ms worth, whichever is smaller … */
const MAX_BURST_BYTES = 16 * 1024;
const MAX_BURST_SECONDS = 0.05;
/** … but at least 5 ms worth, so that millisecond timers can keep up at high rates (above ~26 Mbit/s). */
const MIN_BURST_SECONDS = 0.005;
/** While senders wait, a late timer's tokens (up to 50 ms worth) are kept, so the average rate stays exact. */
const CATCH_UP_SECONDS = 0.05;
/** The most bytes one connection is given at a time while others wait (round robin). */
const QUANTUM_BYTES = 16 * 1024;
/** A direction stops reading its source once this much waits for tokens. */
const PENDING_HIGH_BYTES = 64 * 1024;
/** A direction stops taking tokens once this much (plus what is in flight for the latency) waits to be written. */
const DOWNSTREAM_BASE_BYTES = 64 * 1024;
/** With latency but no rate limit, the most bytes in flight in one direction of one connection. */
const UNLIMITED_IN_FLIGHT_BYTES = 4 * 1024 * 1024;

interface Sender {
  readonly wantsTokens: boolean;
  readonly pendingBytes: number;
  /** Sends up to `max` bytes now; returns how many it sent. */
  grant(max: number): number;
}

/** One direction of the link: a token bucket shared by every connection, serving waiting senders in turn. */
class TokenBucket {
  /** Bytes per second; undefined = unlimited. */
  bytesPerSecond: number | undefined;
  private capacity = 0;
  private tokens = 0;
  private last = performance.now();
  private readonly waiting = new Set<Sender>();
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;
  private backlogged = false;

  constructor(bitsPerSecond: number | undefined) {
    this.setRate(bitsPerSecond);
    this.tokens = this.capacity;
  }

  setRate(bitsPerSecond: number | undefined): void {
    if (bitsPerSecond !== undefined && !(bitsPerSecond > 0 && Number.isFinite(bitsPerSecond)))
      throw new RangeError(`bits per second must be a positive number or undefined, not ${bitsPerSecond}`);
    this.refill();
    const rate = bitsPerSecond === undefined ? undefined : bitsPerSecond / 8;
    this.bytesPerSecond = rate;
    this.capacity =
      rate === undefined
        ? 0
        : Math.max(1, Math.min(MAX_BURST_BYTES, rate * MAX_BURST_SECONDS), rate * MIN_BURST_SECONDS);
    this.tokens = Math.min(this.tokens, this.capacity);
    this.backlogged = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pump();
  }

  want(sender: Sender): void {
    this.waiting.add(sender);
    if (this.timer === undefined) this.pump();
  }

  remove(sender: Sender): void {
    this.waiting.delete(sender);
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.waiting.clear();
  }

  private refill(): void {
    const now = performance.now();
    const rate = this.bytesPerSecond;
    if (rate !== undefined) {
      const cap = this.backlogged ? this.capacity + rate * CATCH_UP_SECONDS : this.capacity;
      this.tokens = Math.min(cap, this.tokens + ((now - this.last) / 1000) * rate);
    }
    this.last = now;
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      this.refill();
      const rate = this.bytesPerSecond;
      while (this.waiting.size > 0 && (rate === undefined || this.tokens >= 1)) {
        const sender = this.waiting.values().next().value as Sender;
        this.waiting.delete(sender);
        if (!sender.wantsTokens) continue;
        const used = sender.grant(rate === undefined ? Infinity : Math.min(Math.floor(this.tokens), QUANTUM_BYTES));
        if (rate !== undefined) this.tokens -= used;
        // A sender that could not use its turn is dropped; it asks again when it can (want()).
        if (used > 0 && sender.wantsTokens) this.waiting.add(sender);
      }
      this.backlogged = this.waiting.size > 0;
      if (this.backlogged && rate !== undefined && this.timer === undefined) {
        const first = this.waiting.values().next().value as Sender;
        const target = Math.max(1, Math.min(this.capacity / 2, first.pendingBytes));
        const ms = Math.max(1, Math.ceil(((target - this.tokens) / rate) * 1000));
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, ms);
      }
    } finally {
      this.pumping = false;
    }
  }
}

/** What a pipe needs from its link. */
interface LinkContext {
  readonly latencyMs: number;
  delivered(direction: 'up' | 'down', bytes: number): void;
}

/** One direction of one connection: src → token bucket → latency → dst, with backpressure at each step. */
class Pipe implements Sender {
  pendingBytes = 0;
  private readonly queue: Buffer[] = [];
  /** Shaped chunks waiting out the latency; null is the end of the stream (FIN). */
  private readonly delayed: { due: number; data: Buffer | null }[] = [];
  private delayedBytes = 0;
  private delayTimer: NodeJS.Timeout | undefined;
  private ended = false;
  private endForwarded = false;
  private stopped = false;

  constructor(
    private readonly direction: 'up' | 'down',
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly bucket: TokenBucket,
    private readonly link: LinkContext,
    /** Called when there is data for a dst that has gone (a TCP peer would answer with a reset). */
    private readonly lost: () => void,
  ) {}

  start(): void {
    this.src.on('data', (chunk: Buffer) => this.onData(chunk));
    this.src.on('end', () => {
      this.ended = true;
      this.forwardEndIfDone();
    });
    this.dst.on('drain', () => this.kick());
    this.src.resume();
  }

  /** Stops forwarding for good: what waits is dropped, the source is left paused. */
  stop(): void {
    this.stopped = true;
    this.bucket.remove(this);
    clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    this.queue.length = 0;
    this.delayed.length = 0;
    this.pendingBytes = 0;
    this.delayedBytes = 0;
    this.src.pause();
  }

  get wantsTokens(): boolean {
    return !this.stopped && this.pendingBytes > 0 && this.downstreamBytes() < this.downstreamHigh();
  }

  grant(max: number): number {
    if (this.stopped) return 0;
    let used = 0;
    while (used < max && this.queue.length > 0 && this.downstreamBytes() < this.downstreamHigh()) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, max - used);
      let piece = head;
      if (n < head.length) {
        piece = head.subarray(0, n);
        this.queue[0] = head.subarray(n);
      } else this.queue.shift();
      this.pendingBytes -= n;
      used += n;
      this.forward(piece);
    }
    if (this.pendingBytes < PENDING_HIGH_BYTES && this.src.isPaused() && !this.stopped) this.src.resume();
    this.forwardEndIfDone();
    return used;
  }

  private onData(chunk: Buffer): void {
    if (this.stopped) return;
    this.queue.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= PENDING_HIGH_BYTES) this.src.pause();
    this.kick();
  }

  private kick(): void {
    if (this.wantsTokens) this.bucket.want(this);
  }

  private downstreamBytes(): number {
    return this.delayedBytes + this.dst.writableLength;
  }

  /** Room for what is in flight over the latency (twice the bandwidth-delay product) plus a little. */
  private downstreamHigh(): number {
    const latency = this.link.latencyMs;
    if (latency <= 0) return DOWNSTREAM_BASE_BYTES;
    const rate = this.bucket.bytesPerSecond;
    return DOWNSTREAM_BASE_BYTES + (rate === undefined ? UNLIMITED_IN_FLIGHT_BYTES : (2 * rate * latency) / 1000);
  }

  private forwardEndIfDone(): void {
    if (!this.ended || this.endForwarded || this.stopped || this.pendingBytes > 0) return;
    this.endForwarded = true;
    this.forward(null);
  }

  private forward(data: Buffer | null): void {
    if (this.link.latencyMs <= 0 && this.delayed.length === 0) {
      this.deliver(data);
      return;
    }
    this.delayed.push({ due: performance.now() + this.link.latencyMs, data });
    if (data) this.delayedBytes += data.length;
    if (this.delayTimer === undefined) this.scheduleDelayed();
  }

  private scheduleDelayed(): void {
    const head = this.delayed[0];
    if (!head) return;
    const ms = Math.max(1, Math.ceil(head.due - performance.now()));
    this.delayTimer = setTimeout(() => {
      this.delayTimer = undefined;
      const now = performance.now();
      while (this.delayed.length > 0 && this.delayed[0]!.due <= now) {
        const { data } = this.delayed.shift()!;
        if (data) this.delayedBytes -= data.length;
        this.deliver(data);
        if (this.stopped) return;
      }
      this.scheduleDelayed();
      this.kick();
    }, ms);
  }

  private deliver(data: Buffer | null): void {
    if (this.stopped) return;
    if (this.dst.destroyed || this.dst.writableEnded) {
      if (data && data.length > 0) this.lost();
      return;
    }
    if (data === null) {
      this.dst.end();
      return;
    }
    this.dst.write(data);
    this.link.delivered(this.direction, data.length);
  }
}

/** One client connection and its upstream connection to the target. */
class Connection {
  state: 'open' | 'blackholed' | 'closed' = 'open';
  private upstream: net.Socket | undefined;
  private pipes: Pipe[] = [];
  private connectTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: net.Socket,
    private readonly connectUpstream: () => net.Socket,
    private readonly buckets: { up: TokenBucket; down: TokenBucket },
    private readonly link: LinkContext,
    private readonly gone: (connection: Connection) => void,
  ) {
    client.setNoDelay(true);
    this.watch(client);
    if (link.latencyMs > 0) this.connectTimer = setTimeout(() => this.connect(), link.latencyMs);
    else this.connect();
  }

  /** RST-like: both sockets are destroyed with a TCP reset. */
  reset(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopForwarding();
    for (const socket of this.sockets()) resetSocket(socket);
    this.gone(this);
  }

  /** Nothing more is forwarded (or read); the sockets stay open until their ends close them or the link closes. */
  blackhole(): void {
    if (this.state !== 'open') return;
    this.state = 'blackholed';
    this.stopForwarding();
    for (const socket of this.sockets()) socket.pause();
    this.closedIfBothGone();
  }

  /** For link.close(): everything goes, quietly. */
  destroy(): void {
    this.state = 'closed';
    this.stopForwarding();
    for (const socket of this.sockets()) socket.destroy();
  }

  private connect(): void {
    this.connectTimer = undefined;
    if (this.state !== 'open') return;
    const upstream = this.connectUpstream();
    this.upstream = upstream;
    upstream.setNoDelay(true);
    this.watch(upstream);
    const lost = () => this.reset();
    this.pipes = [
      new Pipe('up', this.client, upstream, this.buckets.up, this.link, lost),
      new Pipe('down', upstream, this.client, this.buckets.down, this.link, lost),
    ];
    for (const pipe of this.pipes) pipe.start();
  }

  private watch(socket: net.Socket): void {
    socket.on('error', () => {
      // An open connection passes a failure on as a reset; a blackholed one keeps it to itself.
      if (this.state === 'open') this.reset();
    });
    socket.on('close', () => this.closedIfBothGone());
  }

  private closedIfBothGone(): void {
    if (this.state === 'closed') return;
    if (this.sockets().every((s) => s.destroyed)) {
      this.state = 'closed';
      this.stopForwarding();
      this.gone(this);
    }
  }

  private stopForwarding(): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    for (const pipe of this.pipes) pipe.stop();
  }

  private sockets(): net.Socket[] {
    return this.upstream ? [this.client, this.upstream] : [this.client];
  }
}

function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

function isIpv4Loopback(host: string): boolean {
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Starts a link to `options.target`, listening on `options.listenHost`:`options.listenPort`. */
export async function startLink(options: LinkOptions): Promise<Link> {
  const latencyMs = options.latencyMs ?? 0;
  if (!(latencyMs >= 0 && Number.isFinite(latencyMs))) throw new RangeError(`latencyMs must be ≥ 0, not ${latencyMs}`);
  if (options.cutEveryMs !== undefined && !(options.cutEveryMs > 0))
    throw new RangeError(`cutEveryMs must be > 0, not ${options.cutEveryMs}`);
  const cutMode: CutMode = options.cutMode ?? 'reset';
  const { host: targetHost, port: targetPort } = options.target;
  const localAddresses =
    options.localAddresses ??
    (isIpv4Loopback(targetHost) ? Array.from({ length: 253 }, (_, i) => `127.0.0.${i + 2}`) : []);
  let addressChanges = 0;
  let localAddress: string | undefined;

  const buckets = {
    up: new TokenBucket(options.upBitsPerSecond ?? options.bitsPerSecond),
    down: new TokenBucket(options.downBitsPerSecond ?? options.bitsPerSecond),
  };
  const connections = new Set<Connection>();
  const stats: LinkStats = {
    connections: 0,
    get open() {
      return connections.size;
    },
    cuts: 0,
    connectionsCut: 0,
    bytesUp: 0,
    bytesDown: 0,
  };
  const context: LinkContext = {
    latencyMs,
    delivered(direction, bytes) {
      if (direction === 'up') stats.bytesUp += bytes;
      else stats.bytesDown += bytes;
    },
  };
  let closing = false;

  const connectUpstream = (): net.Socket =>
    localAddress === undefined
      ? net.connect({ host: targetHost, port: targetPort, allowHalfOpen: true })
      : net.connect({ host: targetHost, port: targetPort, allowHalfOpen: true, localAddress, family: 4 });

  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    if (closing) {
      client.destroy();
      return;
    }
    stats.connections++;
    connections.add(new Connection(client, connectUpstream, buckets, context, (c) => connections.delete(c)));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listenPort ?? 0, options.listenHost ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;

  const cut = (mode: CutMode = cutMode): void => {
    stats.cuts++;
    for (const connection of [...connections]) {
      if (connection.state !== 'open') continue;
      stats.connectionsCut++;
      if (mode === 'reset') connection.reset();
      else connection.blackhole();
    }
  };
  const interval = options.cutEveryMs === undefined ? undefined : setInterval(() => cut(), options.cutEveryMs);

  return {
    port: address.port,
    host: address.address,
    get localAddress() {
      return localAddress;
    },
    stats,
    cut,
    setRate(bitsPerSecond, direction = 'both') {
      if (direction !== 'down') buckets.up.setRate(bitsPerSecond);
      if (direction !== 'up') buckets.down.setRate(bitsPerSecond);
    },
    changeAddress() {
      if (localAddresses.length === 0)
        throw new Error(
          `no local addresses to move to for target ${targetHost}: give LinkOptions.localAddresses (addresses this host has)`,
        );
      cut();
      localAddress = localAddresses[addressChanges++ % localAddresses.length];
    },
    async close() {
      closing = true;
      clearInterval(interval);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of connections) connection.destroy();
      connections.clear();
      buckets.up.close();
      buckets.down.close();
      await closed;
    },
  };
}
