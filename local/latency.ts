import { createServer, connect, type Server, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * The latency model of the local backend: how long an instance takes to launch and to come
 * online, and how fast it moves bytes to and from S3. The default (`instant`) keeps today's
 * local timings (an instance boots in 200 ms, copies run at disk speed); the `aws` profile makes
 * a local timeline resemble one on EC2, so the recovery paths can be compared in seconds that
 * mean something (docs/performance.md). Every figure can be overridden.
 */
export interface LatencyModel {
  /** Profile name, for reports. */
  name: string;
  /** RunInstances → EC2 `running` (the instance is `pending` meanwhile). */
  launchMs: number;
  /** EC2 `running` → the SSM agent `Online` (boot, cloud-init, agent registration). */
  ssmOnlineMs: number;
  /** S3 → instance bytes per second, per instance (all its connections share it); undefined: unthrottled. */
  s3DownloadBytesPerSecond?: number;
  /** Instance → S3 bytes per second, per instance; undefined: unthrottled. */
  s3UploadBytesPerSecond?: number;
}

const MB = 1_000_000;

/**
 * Named profiles. `aws` takes typical figures for a GPU instance from the Deep Learning AMI
 * (sources in docs/local.md, "Latency model"):
 * - launch 30 s: RunInstances → `running` measured at 10–40 s for current instance types with
 *   an encrypted EBS root (martysweet.co.uk/ec2-launch-times, 2023); GPU spot sits at the slow end;
 * - SSM online 45 s after `running`: the DLAMI's boot and SSM agent registration, within the
 *   30–90 s that such instances take before `DescribeInstanceInformation` says Online;
 * - S3 download 300 MB/s, upload 100 MB/s per instance: the AWS CLI's default 10 concurrent
 *   requests on an instance with "up to 10 Gbps" (g5.xlarge); single-instance S3 throughput
 *   measured from a few hundred MB/s to several GB/s with many threads (github.com/dvassallo/s3-benchmark),
 *   uploads slower than downloads per connection.
 */
export const LATENCY_PROFILES = {
  instant: { name: 'instant', launchMs: 200, ssmOnlineMs: 0 },
  aws: {
    name: 'aws',
    launchMs: 30_000,
    ssmOnlineMs: 45_000,
    s3DownloadBytesPerSecond: 300 * MB,
    s3UploadBytesPerSecond: 100 * MB,
  },
} as const satisfies Record<string, LatencyModel>;

export type LatencyProfileName = keyof typeof LATENCY_PROFILES;

/** A named profile with `overrides` applied (`{ name: 'aws', launchMs: 5000 }` keeps the rest of `aws`). */
export function latencyModel(profile: LatencyProfileName | LatencyModel = 'instant', overrides: Partial<LatencyModel> = {}): LatencyModel {
  const base: LatencyModel = typeof profile === 'string' ? LATENCY_PROFILES[profile] : profile;
  return { ...base, ...overrides };
}

/**
 * The same model with every byte rate divided by `factor`: a bench that moves 1/factor of the
 * bytes (20 MB standing for 2 GB) takes the seconds the full size would take at the real rate.
 */
export function scaleBandwidth(model: LatencyModel, factor: number): LatencyModel {
  const scale = (rate: number | undefined) => (rate === undefined ? undefined : rate / factor);
  return {
    ...model,
    s3DownloadBytesPerSecond: scale(model.s3DownloadBytesPerSecond),
    s3UploadBytesPerSecond: scale(model.s3UploadBytesPerSecond),
  };
}

/** One direction of one instance's link: chunks leave no faster than `bytesPerSecond`, shared by every connection. */
class Pipe {
  private nextFreeAt = 0;
  constructor(private readonly bytesPerSecond: number) {}

  /** How long to hold a chunk of `bytes` so the link keeps its rate. */
  delayFor(bytes: number): number {
    const now = Date.now();
    const start = Math.max(now, this.nextFreeAt);
    this.nextFreeAt = start + (bytes / this.bytesPerSecond) * 1000;
    return this.nextFreeAt - now;
  }

  stream(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, callback: TransformCallback) => {
        const wait = this.delayFor(chunk.length);
        if (wait <= 1) callback(null, chunk);
        else setTimeout(() => callback(null, chunk), wait).unref();
      },
    });
  }
}

/**
 * A TCP forwarder to S3 for one instance whose two directions run at the model's rates: the
 * instance's AWS CLI talks to it instead of the shared endpoint, so a download or upload takes
 * the time its bytes take on that instance's link.
 */
export class ThrottledLink {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly down?: Pipe;
  private readonly up?: Pipe;

  private constructor(
    private readonly target: URL,
    model: LatencyModel,
  ) {
    if (model.s3DownloadBytesPerSecond !== undefined) this.down = new Pipe(model.s3DownloadBytesPerSecond);
    if (model.s3UploadBytesPerSecond !== undefined) this.up = new Pipe(model.s3UploadBytesPerSecond);
    // Half-open, so a client that ends its request still reads the whole answer.
    this.server = createServer({ allowHalfOpen: true }, (client) => this.forward(client));
  }

  /** Starts a link to `targetUrl` (`http://127.0.0.1:<port>`) on a fresh loopback port. */
  static async open(targetUrl: string, model: LatencyModel): Promise<ThrottledLink> {
    const link = new ThrottledLink(new URL(targetUrl), model);
    await new Promise<void>((resolve, reject) => {
      link.server.once('error', reject);
      link.server.listen(0, '127.0.0.1', () => resolve());
    });
    return link;
  }

  get url(): string {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('throttled link is not listening');
    return `http://127.0.0.1:${address.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private forward(client: Socket): void {
    const upstream = connect({ port: Number(this.target.port), host: this.target.hostname, allowHalfOpen: true });
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    if (this.up === undefined) client.pipe(upstream);
    else client.pipe(this.up.stream()).pipe(upstream);
    if (this.down === undefined) upstream.pipe(client);
    else upstream.pipe(this.down.stream()).pipe(client);
  }
}

/** Whether the model throttles S3 at all (then each instance gets its own link). */
export function throttlesS3(model: LatencyModel): boolean {
  return model.s3DownloadBytesPerSecond !== undefined || model.s3UploadBytesPerSecond !== undefined;
}

/** The local backend's shortest pause between readiness checks. */
const READINESS_POLL_MS = 250;
/**
 * The shortest span the readiness checks cover: a local "instance" is ready at once, but a
 * loaded machine can take many seconds to start its processes, and an instance declared not
 * ready is a lost attempt.
 */
const READINESS_MIN_WINDOW_MS = 60_000;

/**
 * The local backend's pause between readiness checks (WaitForInstance, WaitForReplacement): the
 * steps give up on an instance after `maxChecks` checks (Instance.NotReady), so under a slow model
 * the pause grows until those checks span twice its launch + SSM online time; otherwise an
 * instance that boots as the model says would be declared not ready, again and again.
 */
export function readinessPollMs(model: LatencyModel, maxChecks: number, launchMs: number = model.launchMs): number {
  return Math.max(READINESS_POLL_MS, Math.ceil(Math.max(READINESS_MIN_WINDOW_MS, 2 * (launchMs + model.ssmOnlineMs)) / maxChecks));
}

/**
 * The local backend's pause between polls of the data copy (WaitForPrefetch). The machine's poll
 * count is bounded by the run's event budget (as few as ~70 polls when it allows many attempts),
 * sized for AWS's 10 s pauses; at 500 ms that is barely half a minute, less than a throttled
 * copy of a big dataset takes, so a throttled model polls every 2 s.
 */
export function prefetchPollMs(model: LatencyModel): number {
  return model.s3DownloadBytesPerSecond === undefined ? 500 : 2000;
}
