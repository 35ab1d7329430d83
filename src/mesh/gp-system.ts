/**
 * A simulated GP practice system, for tests and the demo: it polls the practice's MESH mailbox, downloads each
 * message, acknowledges it at MESH, and sends a FHIR response message back to the sender's mailbox (the result
 * message's MessageHeader.source.endpoint, else the MESH sender) on the "_ACK" workflow: response.code "ok" and
 * response.identifier the original MessageHeader id. A message it cannot read gets a "fatal-error" response when it
 * can tell what it answers, and is acknowledged at MESH either way (a real system would put it in front of a
 * person).
 */
import { buildGpResponseMessage, readGpResultMessage, type ResponseCode } from '../fhir/gp-result-message.js';
import { ackWorkflow, MeshClient, type MeshSettings } from './mesh-client.js';

export interface GpSystemOptions {
  /** The practice's name, in its responses. */
  name?: string;
  /**
   * How to answer each result (default "ok"); null sends no response (a practice that downloads but never
   * answers). Gets the message's NHS number and MessageHeader id.
   */
  respond?: (message: { messageId: string; nhsNumber: string | null }) => ResponseCode | null;
  /** Details sent with an error response. */
  details?: string;
  now?: () => Date;
}

export interface ReceivedByPractice {
  meshMessageId: string;
  messageHeaderId: string | null;
  nhsNumber: string | null;
  conclusion: string | null;
  answered: ResponseCode | null;
}

/** One poll: everything in the inbox read, answered and acknowledged. Returns what came in. */
export async function pollGpInbox(client: MeshClient, options: GpSystemOptions = {}): Promise<ReceivedByPractice[]> {
  const now = options.now ?? (() => new Date());
  const received: ReceivedByPractice[] = [];
  for (const id of await client.listInbox()) {
    const message = await client.download(id);
    if (!message) continue;
    let json: unknown = null;
    try {
      json = JSON.parse(message.body.toString('utf8'));
    } catch {
      // Unreadable: no way to say what it answers.
    }
    const read = readGpResultMessage(json);
    const code: ResponseCode | null = read.ok
      ? options.respond
        ? options.respond({ messageId: read.messageId, nhsNumber: read.nhsNumber })
        : 'ok'
      : null;
    const replyTo = (read.ok ? read.sourceEndpoint : null) ?? message.from;
    if (read.ok && code && replyTo) {
      const response = buildGpResponseMessage({
        originalMessageId: read.messageId,
        code,
        from: { mailbox: client.mailbox, name: options.name ?? client.mailbox },
        to: replyTo,
        at: now(),
        ...(code !== 'ok' ? { details: options.details ?? 'The practice system could not file this result.' } : {}),
      });
      await client.send({
        to: replyTo,
        workflowId: ackWorkflow(message.workflowId ?? client.workflowId),
        body: JSON.stringify(response),
        localId: response.id,
        contentType: 'application/fhir+json',
        fileName: 'response.json',
      });
    }
    await client.acknowledge(message.messageId);
    received.push({
      meshMessageId: message.messageId,
      messageHeaderId: read.ok ? read.messageId : null,
      nhsNumber: read.ok ? read.nhsNumber : null,
      conclusion: read.ok ? read.conclusion : null,
      answered: read.ok ? code : null,
    });
  }
  return received;
}

export interface RunningGpSystem {
  client: MeshClient;
  /** Everything received so far. */
  readonly received: readonly ReceivedByPractice[];
  pollNow(): Promise<ReceivedByPractice[]>;
  stop(): Promise<void>;
}

/** Polls the practice's mailbox every `intervalMs` (default 5 s) until stopped; failures are passed to onError. */
export function startGpSystem(
  settings: MeshSettings,
  options: GpSystemOptions & { intervalMs?: number; onError?: (error: Error) => void } = {},
): RunningGpSystem {
  const client = new MeshClient(settings);
  const received: ReceivedByPractice[] = [];
  let running: Promise<ReceivedByPractice[]> | null = null;
  const pollNow = () => {
    running ??= pollGpInbox(client, options)
      .then((r) => {
        received.push(...r);
        return r;
      })
      .finally(() => {
        running = null;
      });
    return running;
  };
  const timer = setInterval(() => {
    pollNow().catch((e: Error) => options.onError?.(e));
  }, options.intervalMs ?? 5000);
  timer.unref();
  return {
    client,
    received,
    pollNow,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
