import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  decodeUploadMetadata,
  MAX_PACKAGE_BYTES,
  outboxReportSchema,
  OUTBOX_PATH,
  TRANSFER_KEY_PATH,
  TUS_VERSION,
  uploadMetadataSchema,
  UPLOADS_PATH,
} from '../protocol/transfer.js';
import type { Db } from '../store/database.js';
import {
  createUpload,
  findUpload,
  recordOutboxReport,
  recordUploadProgress,
  setUploadLength,
  uploadStatus,
  type UploadRow,
} from '../store/transfers.js';
import type { TransferIntake } from './transfer-intake.js';

export interface TransferRoutesOptions {
  db: Db;
  intake: TransferIntake;
  publicKey: Buffer;
  requireGateway: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  /** Bytes between fsyncs while a PATCH runs: what a hub crash can cost a gateway to resend (default 8 MiB). */
  checkpointBytes?: number;
  /** A PATCH that brings no byte for this long is ended (a dead link), keeping what came (default 60 s). */
  idleMs?: number;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OFFSET_TYPE = 'application/offset+octet-stream';

/**
 * Resumable uploads of sealed packages (docs/transfer-protocol.md): tus 1.0.0 core, creation and
 * creation-defer-length, on the gateway listener (mutual TLS). The upload id is the gateway's package id. Bytes are written to disk as they
 * come and fsynced at checkpoints and at the end of every PATCH, and only fsynced bytes are acknowledged; a
 * resumed PATCH may start at or below the acknowledged offset (the hub goes back to it), never beyond.
 */
export function registerTransferRoutes(app: FastifyInstance, options: TransferRoutesOptions): void {
  const { db, intake } = options;
  const checkpointBytes = options.checkpointBytes ?? 8 * 1024 * 1024;
  /** The PATCH in progress per upload: a new one for the same upload ends the old (its link is gone). */
  const active = new Map<string, { request: IncomingMessage; done: Promise<void> }>();

  app.addContentTypeParser(OFFSET_TYPE, (_request, _payload, done) => done(null, undefined));

  const tus = (reply: FastifyReply) => reply.header('tus-resumable', TUS_VERSION).header('cache-control', 'no-store');
  const problem = (reply: FastifyReply, status: number, message: string) =>
    tus(reply).code(status).send({ error: 'refused', message });

  const ownUpload = async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const { id } = request.params;
    const upload = UUID.test(id) ? await findUpload(db, id) : undefined;
    if (!upload || upload.gateway_id !== request.gateway!.id) {
      await problem(reply, 404, 'No such upload for this gateway');
      return undefined;
    }
    return upload;
  };

  app.get(TRANSFER_KEY_PATH, { preHandler: options.requireGateway }, async () => ({
    algorithm: 'X25519',
    publicKey: options.publicKey.toString('base64'),
  }));

  app.options(UPLOADS_PATH, async (_request, reply) =>
    tus(reply)
      .code(204)
      .header('tus-version', TUS_VERSION)
      .header('tus-extension', 'creation,creation-defer-length')
      .header('tus-max-size', String(MAX_PACKAGE_BYTES))
      .send(),
  );

  app.post(UPLOADS_PATH, { preHandler: options.requireGateway }, async (request, reply) => {
    const deferred = request.headers['upload-defer-length'];
    if (deferred !== undefined && deferred !== '1') return problem(reply, 400, 'Upload-Defer-Length may only be 1');
    const length = deferred === undefined ? uploadLength(request) : undefined;
    if (typeof length === 'object') return problem(reply, length.status, length.message);
    const raw = decodeUploadMetadata(String(request.headers['upload-metadata'] ?? ''));
    const parsed = uploadMetadataSchema.safeParse(raw);
    if (!parsed.success || !UUID.test(raw.id ?? ''))
      return problem(
        reply,
        400,
        `Upload-Metadata needs id (a UUID), sop, priority, accession and waited: ${parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') ?? 'id is not a UUID'}`,
      );
    const metadata = parsed.data;
    const gateway = request.gateway!;
    let upload = await createUpload(db, {
      id: raw.id!,
      gatewayId: gateway.id,
      sopInstanceUid: metadata.sop,
      accessionNumber: metadata.accession,
      priority: metadata.priority,
      length,
      waitedSeconds: metadata.waited,
    });
    if (upload.gateway_id !== gateway.id) return problem(reply, 409, 'That package id is taken');
    if (upload.sop_instance_uid !== metadata.sop)
      return problem(reply, 409, 'That package id was created for another image');
    if (length !== undefined) {
      const told = await tellLength(upload, length);
      if (typeof told === 'string') return problem(reply, 409, told);
      upload = told;
    }
    if (upload.state === 'receiving' && Number(upload.received_bytes) === 0)
      closeSync(openSync(intake.partPath(upload.id), 'a', 0o600));
    return tus(reply)
      .code(201)
      .header('location', `${UPLOADS_PATH}/${upload.id}`)
      .header('upload-offset', String(upload.received_bytes))
      .send();
  });

  /** The Upload-Length header: a byte count, or the answer that refuses it. */
  function uploadLength(request: FastifyRequest): number | { status: 400 | 413; message: string } {
    const length = Number(request.headers['upload-length']);
    if (!Number.isSafeInteger(length) || length <= 0)
      return {
        status: 400,
        message: 'Upload-Length must be the package size in bytes (or Upload-Defer-Length: 1 to say it later)',
      };
    if (length > MAX_PACKAGE_BYTES)
      return { status: 413, message: `A package may be at most ${MAX_PACKAGE_BYTES} bytes` };
    return length;
  }

  /**
   * The gateway says how long a package is: the first time, for an upload begun without it (the hub may then have
   * all of it); any other time it must be the same. Returns the upload as it stands, or why the length is refused.
   */
  async function tellLength(upload: NonNullable<UploadRow>, length: number): Promise<NonNullable<UploadRow> | string> {
    const row = upload.length === null ? await setUploadLength(db, upload.id, length) : upload;
    if (row.length === null)
      return `The hub has ${row.received_bytes} bytes of this package already: it cannot be ${length} bytes`;
    if (Number(row.length) !== length) return `That package was said to be ${row.length} bytes, not ${length}`;
    if (row.state === 'receiving' && Number(row.received_bytes) === length) {
      await recordUploadProgress(db, row.id, length, length);
      intake.received(row.id, length);
      return (await findUpload(db, row.id))!;
    }
    return row;
  }

  app.head<{ Params: { id: string } }>(
    `${UPLOADS_PATH}/:id`,
    { preHandler: options.requireGateway },
    async (request, reply) => {
      const upload = await ownUpload(request, reply);
      if (!upload) return reply;
      tus(reply).code(200).header('upload-offset', String(upload.received_bytes));
      if (upload.length === null) reply.header('upload-defer-length', '1');
      else reply.header('upload-length', String(upload.length));
      return reply.header('screening-hub-upload-state', upload.state).send();
    },
  );

  // Where an upload stands: with ?wait=N (seconds, at most 60) a whole package's answer waits until it is stored
  // or rejected, so the gateway learns at once without polling.
  app.get<{ Params: { id: string }; Querystring: { wait?: string } }>(
    `${UPLOADS_PATH}/:id`,
    { preHandler: options.requireGateway },
    async (request, reply) => {
      const upload = await ownUpload(request, reply);
      if (!upload) return reply;
      const wait = Math.min(Math.max(Number(request.query.wait ?? 0) || 0, 0), 60);
      const status = wait > 0 ? await intake.waitFor(upload.id, wait * 1000) : uploadStatus(upload);
      return tus(reply).send(status ?? uploadStatus(upload));
    },
  );

  app.patch<{ Params: { id: string } }>(
    `${UPLOADS_PATH}/:id`,
    { preHandler: options.requireGateway },
    async (request, reply) => {
      if (request.headers['tus-resumable'] !== TUS_VERSION)
        return problem(reply, 412, `Tus-Resumable ${TUS_VERSION} is required`);
      if (request.headers['content-type'] !== OFFSET_TYPE)
        return problem(reply, 415, `Content-Type must be ${OFFSET_TYPE}`);
      const offset = Number(request.headers['upload-offset']);
      if (!Number.isSafeInteger(offset) || offset < 0) return problem(reply, 400, 'Upload-Offset must be a byte count');
      const id = request.params.id;
      // The link the earlier PATCH came on has gone (or the gateway would not be here): end it and keep its bytes.
      const earlier = active.get(id);
      if (earlier) {
        earlier.request.destroy();
        await earlier.done;
      }
      let upload = await ownUpload(request, reply);
      if (!upload) return reply;
      if (request.headers['upload-length'] !== undefined) {
        const told = uploadLength(request);
        if (typeof told === 'object') return problem(reply, told.status, told.message);
        const row = await tellLength(upload, told);
        if (typeof row === 'string') return problem(reply, 409, row);
        upload = row;
      }
      const length = upload.length === null ? null : Number(upload.length);
      if (upload.state !== 'receiving') {
        return tus(reply).code(204).header('upload-offset', String(upload.received_bytes)).send();
      }
      const acknowledged = Number(upload.received_bytes);
      if (offset > acknowledged)
        return tus(reply)
          .code(409)
          .header('upload-offset', String(acknowledged))
          .send({ error: 'offset', message: `The hub has ${acknowledged} bytes of this package, not ${offset}` });

      let finish!: () => void;
      const done = new Promise<void>((resolve) => (finish = resolve));
      active.set(id, { request: request.raw, done });
      try {
        intake.arriving(id);
        const { synced, refused } = await receive(request.raw, id, offset, length, async (bytes) => {
          await recordUploadProgress(db, id, bytes, length);
        });
        if (synced === length) intake.received(id, length);
        if (refused) {
          // Answered before the body is read to its end: the connection is closed after this answer.
          reply.header('connection', 'close').header('upload-offset', String(synced));
          if (refused.name === 'TooLong') return problem(reply, 413, refused.message);
          options.log('error', `Upload ${id}: could not write the package at the hub (${refused.message})`);
          return problem(
            reply,
            507,
            `The hub could not store the package just now (${(refused as NodeJS.ErrnoException).code ?? 'write error'}): it keeps the ${synced} bytes it has; send the rest later`,
          );
        }
        // The link it came on is gone: the next PATCH or HEAD learns the offset.
        if (!request.raw.socket || request.raw.socket.destroyed) return reply;
        return tus(reply).code(204).header('upload-offset', String(synced)).send();
      } finally {
        active.delete(id);
        finish();
      }
    },
  );

  /**
   * Writes the request body at `offset`, fsyncing every checkpointBytes and at the end, however the request ends
   * (finished, or cut by the link); each fsync is recorded. Returns the bytes now durable, and why the hub stopped
   * reading if it did (a write failed: disk full; or the body goes beyond the package), leaving the rest unread.
   * The intake is told of every byte written, so it can open the package as it arrives.
   */
  async function receive(
    body: IncomingMessage,
    id: string,
    offset: number,
    length: number | null,
    recorded: (bytes: number) => Promise<void>,
  ): Promise<{ synced: number; refused?: Error }> {
    const limit = length ?? MAX_PACKAGE_BYTES;
    const fd = openSync(intake.partPath(id), 'r+');
    let position = offset;
    let synced = offset;
    let refused: Error | undefined;
    const sync = async () => {
      if (position === synced) return;
      fsyncSync(fd);
      synced = position;
      await recorded(synced);
    };
    try {
      if (fstatSync(fd).size > offset) ftruncateSync(fd, offset);
      body.setTimeout?.(options.idleMs ?? 60_000, () => body.destroy(new Error('no bytes from the gateway')));
      // Read by events, not for-await: leaving a for-await loop early destroys the socket, and the hub must still
      // answer why it stopped.
      await new Promise<void>((resolve) => {
        let checkpoint: Promise<void> | undefined;
        const stop = (error?: Error) => {
          body.off('data', onData);
          body.pause();
          refused ??= error;
          void (checkpoint ?? Promise.resolve()).finally(resolve);
        };
        const onData = (chunk: Buffer) => {
          if (position + chunk.length > limit) {
            const error = new Error(
              length === null
                ? `A package may be at most ${MAX_PACKAGE_BYTES} bytes; this PATCH goes beyond it`
                : `The package is ${length} bytes; this PATCH goes beyond it`,
            );
            error.name = 'TooLong';
            return stop(error);
          }
          try {
            for (let written = 0; written < chunk.length;)
              written += writeSync(fd, chunk, written, chunk.length - written, position + written);
          } catch (error) {
            // Bytes of this chunk written before the failure are not counted: the next PATCH writes them again.
            return stop(error as Error);
          }
          position += chunk.length;
          intake.grew(id, position);
          if (position - synced >= checkpointBytes && !checkpoint) {
            body.pause();
            checkpoint = sync()
              .catch((error: Error) => stop(error))
              .finally(() => {
                checkpoint = undefined;
                if (!refused) body.resume();
              });
          }
        };
        body.on('data', onData);
        // The end, or the link dropped mid-PATCH: what arrived is kept, and acknowledged on the next HEAD.
        body.once('end', () => stop());
        body.once('error', () => stop());
        body.once('close', () => stop());
      });
      try {
        await sync();
      } catch (error) {
        refused ??= error as Error;
      }
      return refused ? { synced, refused } : { synced };
    } finally {
      closeSync(fd);
    }
  }

  app.post(OUTBOX_PATH, { preHandler: options.requireGateway }, async (request, reply) => {
    const parsed = outboxReportSchema.safeParse(request.body);
    if (!parsed.success) return problem(reply, 400, 'Not an outbox report');
    await recordOutboxReport(db, request.gateway!.id, parsed.data);
    return { recorded: true };
  });
}
