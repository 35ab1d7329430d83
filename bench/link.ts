/**
 * A simulated 3G/4G link in front of a running hub (or anything TCP): a user-space proxy with a rate limit, latency
 * and cuts (see test/support/link-simulator.ts). Point the gateway at the --listen port instead of the hub's.
 *
 *   npx tsx bench/link.ts --target 127.0.0.1:8443 --listen 9443 --mbit 12 --latency 40 --cut-every 60
 *
 *   --target host:port    where connections go (required, except with --self-test)
 *   --listen port         port to listen on (default: any free port, printed); --host address (default 127.0.0.1)
 *   --mbit n              rate each way in Mbit/s (default unlimited); --up-mbit / --down-mbit for one way
 *   --latency ms          one-way delay (default 0)
 *   --cut-every t         cut every open connection every t seconds ("60", "2.5", "500ms"); --cut-mode reset|blackhole
 *   --stats-every s       print counters every s seconds (default 10; 0 = never)
 *
 * While it runs, type a command and Enter: `cut`, `blackhole`, `addr` (change address), `rate 4` / `rate off`
 * (Mbit/s each way), `stats`, `quit`.
 *
 * Accuracy check: `npx tsx bench/link.ts --self-test --mbit 12 [--bytes 15000000] [--latency 40]` sends the bytes
 * through a link to a local sink and prints how long it took against the nominal rate.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { startLink, type CutMode, type LinkOptions } from '../test/support/link-simulator.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    listen: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    mbit: { type: 'string' },
    'up-mbit': { type: 'string' },
    'down-mbit': { type: 'string' },
    latency: { type: 'string', default: '0' },
    'cut-every': { type: 'string' },
    'cut-mode': { type: 'string', default: 'reset' },
    'stats-every': { type: 'string', default: '10' },
    'self-test': { type: 'boolean', default: false },
    bytes: { type: 'string', default: '15000000' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

function usage(message?: string): never {
  if (message) console.error(message);
  console.error(
    'usage: npx tsx bench/link.ts --target host:port [--listen port] [--host addr] [--mbit n | --up-mbit n --down-mbit n]\n' +
      '         [--latency ms] [--cut-every seconds|NNms] [--cut-mode reset|blackhole] [--stats-every s]\n' +
      '       npx tsx bench/link.ts --self-test [--mbit n] [--latency ms] [--bytes n]',
  );
  process.exit(message ? 2 : 0);
}

function number(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) usage(`--${name}: not a number: ${text}`);
  return n;
}

function mbit(name: string, text: string | undefined): number | undefined {
  const n = number(name, text);
  if (n === 0) usage(`--${name}: must be > 0 (leave it out for unlimited)`);
  return n === undefined ? undefined : n * 1e6;
}

/** "60" and "60s" are seconds, "500ms" milliseconds. */
function duration(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (!match) usage(`--${name}: not a duration: ${text}`);
  const n = Number(match[1]) * (match[2] === 'ms' ? 1 : 1000);
  if (!(n > 0)) usage(`--${name}: must be > 0`);
  return n;
}

function rateText(bits: number | undefined): string {
  return bits === undefined ? 'unlimited' : `${bits / 1e6} Mbit/s`;
}

if (values.help) usage();
const cutModeText = values['cut-mode'];
if (cutModeText !== 'reset' && cutModeText !== 'blackhole') usage(`--cut-mode: reset or blackhole, not ${cutModeText}`);
const cutMode: CutMode = cutModeText;
const shaping: Omit<LinkOptions, 'target'> = {
  bitsPerSecond: mbit('mbit', values.mbit),
  upBitsPerSecond: mbit('up-mbit', values['up-mbit']),
  downBitsPerSecond: mbit('down-mbit', values['down-mbit']),
  latencyMs: number('latency', values.latency) ?? 0,
  cutEveryMs: duration('cut-every', values['cut-every']),
  cutMode,
};

if (values['self-test']) await selfTest();
else await proxy();

async function proxy(): Promise<void> {
  if (!values.target) usage('--target host:port is required');
  const match = /^(.+):(\d+)$/.exec(values.target);
  if (!match) usage(`--target: host:port, not ${values.target}`);
  const target = { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) };
  const link = await startLink({
    ...shaping,
    target,
    listenPort: number('listen', values.listen) ?? 0,
    listenHost: values.host,
  });
  const up = shaping.upBitsPerSecond ?? shaping.bitsPerSecond;
  const down = shaping.downBitsPerSecond ?? shaping.bitsPerSecond;
  console.log(
    `link ${link.host}:${link.port} → ${target.host}:${target.port}: up ${rateText(up)}, down ${rateText(down)}, ` +
      `latency ${shaping.latencyMs} ms one way` +
      (shaping.cutEveryMs ? `, ${cutMode} cut every ${shaping.cutEveryMs / 1000} s` : ''),
  );
  console.log('commands: cut, blackhole, addr, rate <mbit>|off, stats, quit');

  let last = { up: 0, down: 0, at: performance.now() };
  const printStats = () => {
    const s = link.stats;
    const seconds = (performance.now() - last.at) / 1000;
    const upRate = ((s.bytesUp - last.up) * 8) / seconds / 1e6;
    const downRate = ((s.bytesDown - last.down) * 8) / seconds / 1e6;
    console.log(
      `${new Date().toISOString()} connections ${s.connections} (open ${s.open}), cuts ${s.cuts} ` +
        `(${s.connectionsCut} connections), up ${s.bytesUp} B (${upRate.toFixed(2)} Mbit/s), ` +
        `down ${s.bytesDown} B (${downRate.toFixed(2)} Mbit/s)` +
        (link.localAddress ? `, from ${link.localAddress}` : ''),
    );
    last = { up: s.bytesUp, down: s.bytesDown, at: performance.now() };
  };
  const statsEvery = number('stats-every', values['stats-every']) ?? 0;
  const statsTimer = statsEvery > 0 ? setInterval(printStats, statsEvery * 1000) : undefined;

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(statsTimer);
    input.close();
    printStats();
    await link.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => {
    const [command, argument] = line.trim().split(/\s+/);
    try {
      switch (command) {
        case '':
        case undefined:
          break;
        case 'cut':
        case 'blackhole':
          link.cut(command === 'cut' ? cutMode : 'blackhole');
          console.log(`cut (${command === 'cut' ? cutMode : 'blackhole'})`);
          break;
        case 'addr':
          link.changeAddress();
          console.log(`address changed: upstream connections now come from ${link.localAddress}`);
          break;
        case 'rate': {
          const bits = argument === undefined || argument === 'off' ? undefined : Number(argument) * 1e6;
          link.setRate(bits);
          console.log(`rate ${rateText(bits)} each way`);
          break;
        }
        case 'stats':
          printStats();
          break;
        case 'quit':
        case 'exit':
          void stop();
          break;
        default:
          console.log('commands: cut, blackhole, addr, rate <mbit>|off, stats, quit');
      }
    } catch (error) {
      console.log(`${command}: ${(error as Error).message}`);
    }
  });
}

/** Sends --bytes through a link to a local sink and back-checks the time against the nominal rate. */
async function selfTest(): Promise<void> {
  const total = number('bytes', values.bytes) ?? 15_000_000;
  const bits = shaping.upBitsPerSecond ?? shaping.bitsPerSecond;
  let received = 0;
  let doneAt = 0;
  const hash = createHash('sha256');
  let finished!: () => void;
  const allReceived = new Promise<void>((resolve) => (finished = resolve));
  const sink = net.createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      hash.update(chunk);
      if (received >= total) {
        doneAt = performance.now();
        socket.end();
        finished();
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const link = await startLink({
    ...shaping,
    cutEveryMs: undefined,
    target: { host: '127.0.0.1', port: (sink.address() as net.AddressInfo).port },
  });

  const payload = randomBytes(total);
  const cpuBefore = process.cpuUsage();
  const client = net.connect(link.port, link.host);
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const start = performance.now();
  for (let offset = 0; offset < total; offset += 64 * 1024) {
    if (!client.write(payload.subarray(offset, offset + 64 * 1024)))
      await new Promise<void>((resolve) => client.once('drain', resolve));
  }
  await allReceived;
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = (doneAt - start) / 1000;
  const measured = (total * 8) / seconds;
  const intact = hash.digest('hex') === createHash('sha256').update(payload).digest('hex');
  console.log(
    `${total} bytes through the link in ${seconds.toFixed(3)} s: ${(measured / 1e6).toFixed(3)} Mbit/s` +
      (bits === undefined
        ? ''
        : ` (nominal ${bits / 1e6} Mbit/s → ${((total * 8) / bits).toFixed(3)} s; ` +
          `rate error ${(((measured - bits) / bits) * 100).toFixed(2)}%)`) +
      `; latency ${shaping.latencyMs} ms; data ${intact ? 'intact' : 'CORRUPTED'}; ` +
      `CPU ${((cpu.user + cpu.system) / 1000 / (seconds * 1000)).toFixed(3)} s per s (whole process, sender and sink too)`,
  );
  client.destroy();
  await link.close();
  await new Promise<void>((resolve) => sink.close(() => resolve()));
  process.exit(intact ? 0 : 1);
}
