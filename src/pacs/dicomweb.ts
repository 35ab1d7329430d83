import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { PacsRefused } from './errors.js';
import type { Pacs, StoredInstance } from './pacs.js';

export interface DicomWebOptions {
  /** The DICOMweb base URL, e.g. http://pacs:8042/dicom-web. A user and password in it are sent as basic auth. */
  url: string;
  /** Basic auth (overrides credentials in the URL). */
  username?: string;
  password?: string;
  /** Sent as `Authorization: Bearer …` (instead of basic auth). */
  bearerToken?: string;
  /** Extra headers for every request. */
  headers?: Record<string, string>;
  /** Certificates to trust for https, beyond Node's defaults (e.g. the trust's own CA). */
  ca?: string | Buffer | (string | Buffer)[];
  /** Give up if the TCP connection is not made in this long. Default 15 s. */
  connectTimeoutMs?: number;
  /** Give up if no bytes move either way for this long while sending the file or reading the answer. Default 60 s. */
  idleTimeoutMs?: number;
  /** After the whole file is sent, how long the PACS may take to store it and answer. Default 10 minutes. */
  responseTimeoutMs?: number;
  /** A viewer URL for staff, with `{StudyInstanceUID}` in it; by default the study's WADO-RS URL. */
  studyLinkTemplate?: string;
}

/** What the PACS answered to a STOW-RS request. */
interface Answer {
  status: number;
  statusText: string;
  contentType: string;
  warning: string;
  body: Buffer;
}

type DicomJson = Record<string, { vr?: string; Value?: unknown[] } | undefined>;

const FAILED_SOP_SEQUENCE = '00081198';
const REFERENCED_SOP_SEQUENCE = '00081199';
const REFERENCED_SOP_INSTANCE_UID = '00081155';
const FAILURE_REASON = '00081197';
const FAILURE_DETAIL_GOOGLE = '00090097';

/**
 * Failure reasons that mean the PACS already holds an instance with this SOP Instance UID, so the store has, in effect,
 * succeeded: 0x0111 Duplicate SOP Instance (PS3.7), 0xB00E (45070) SOP instance already exists (Microsoft/Azure DICOM).
 */
const ALREADY_HELD = new Set([0x0111, 0xb00e]);
/** HTTP statuses that refuse this instance; any other non-2xx status (401, 403, 404, 408, 429, 5xx...) is transient. */
const REFUSING_STATUSES = new Set([400, 409, 413, 415, 422]);
/** The most of an answer kept: a one-instance STOW-RS answer is a few kilobytes. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * A PACS reached by DICOMweb: STOW-RS (PS3.18 10.5) of one Part 10 file per request, streamed from disk with
 * backpressure (never held in memory: a tomosynthesis object is 1.8 GB), with a Content-Length so no chunked upload is
 * needed. One new connection per store: an idle keep-alive socket the PACS has closed never eats a request.
 */
export class DicomWebPacs implements Pacs {
  readonly description: string;
  private readonly base: URL;
  private readonly authorization: string | undefined;

  constructor(private readonly options: DicomWebOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`A DICOMweb PACS needs an http(s) URL, not ${url.protocol}`);
    const username = options.username ?? decodeURIComponent(url.username);
    const password = options.password ?? decodeURIComponent(url.password);
    if (options.bearerToken) this.authorization = `Bearer ${options.bearerToken}`;
    else if (username || password)
      this.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    url.pathname = url.pathname.replace(/\/+$/, '');
    this.base = url;
    this.description = `DICOMweb ${url.href.replace(/\/+$/, '')}`;
  }

  studyLink(studyInstanceUid: string): string | undefined {
    const template = this.options.studyLinkTemplate;
    if (template) return template.replaceAll('{StudyInstanceUID}', encodeURIComponent(studyInstanceUid));
    return `${this.base.href.replace(/\/+$/, '')}/studies/${encodeURIComponent(studyInstanceUid)}`;
  }

  async store(path: string, instance: StoredInstance): Promise<void> {
    const file = await stat(path);
    if (!file.isFile()) throw new Error(`${path} is not a file`);
    const answer = await this.post(path, file.size);
    this.judge(answer, instance);
  }

  /** POSTs the file as the one part of a multipart/related body to {base}/studies and reads the answer. */
  private post(path: string, size: number): Promise<Answer> {
    const boundary = `screening-hub-${randomBytes(24).toString('hex')}`;
    const head = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1');
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
    const totalBytes = head.length + size + tail.length;
    const url = new URL(`${this.base.href.replace(/\/+$/, '')}/studies`);
    const connectTimeoutMs = this.options.connectTimeoutMs ?? 15_000;
    const idleTimeoutMs = this.options.idleTimeoutMs ?? 60_000;
    const responseTimeoutMs = this.options.responseTimeoutMs ?? 600_000;
    const headers: Record<string, string> = {
      ...this.options.headers,
      'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      'Content-Length': String(totalBytes),
      Accept: 'application/dicom+json',
      'User-Agent': 'screening-hub',
    };
    if (this.authorization) headers.Authorization = this.authorization;
    const where = this.description;

    return new Promise<Answer>((resolve, reject) => {
      const transport = url.protocol === 'https:' ? https : http;
      const request = transport.request(url, {
        method: 'POST',
        headers,
        agent: false,
        ...(this.options.ca ? { ca: this.options.ca } : {}),
      });
      let settled = false;
      let answering = false;
      let sent = false;
      const fail = (message: string, cause?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        request.destroy();
        reject(new Error(`${where}: ${message}`, cause === undefined ? undefined : { cause }));
      };
      const connectTimer = setTimeout(
        () => fail(`no connection within ${connectTimeoutMs / 1000} s (${url.host})`),
        connectTimeoutMs,
      );
      let connected = false;
      let socket: Socket | undefined;
      const onConnect = () => {
        connected = true;
        clearTimeout(connectTimer);
      };
      request.on('socket', (s) => {
        socket = s;
        if (!s.connecting) onConnect();
        else s.once('connect', onConnect);
      });
      request.setTimeout(idleTimeoutMs, () => {
        if (sent && !answering) fail(`no answer within ${responseTimeoutMs / 1000} s of sending the file`);
        else fail(`stalled: nothing ${answering ? 'received' : 'sent'} for ${idleTimeoutMs / 1000} s`);
      });
      request.on('finish', () => {
        sent = true;
        if (!answering) request.setTimeout(responseTimeoutMs);
      });
      const broken = (error: NodeJS.ErrnoException) => {
        const what =
          error.code && !error.message.includes(error.code) ? `${error.code} ${error.message}` : error.message;
        if (!connected) return fail(`could not connect to ${url.host}: ${what}`, error);
        if (!sent) {
          const bytes = `${socket?.bytesWritten ?? 0} of ${totalBytes} bytes sent`;
          return fail(`the connection broke while sending the file (${bytes}): ${what}`, error);
        }
        fail(`the connection broke while waiting for the answer: ${what}`, error);
      };
      request.on('error', (error: NodeJS.ErrnoException) => {
        // A PACS may answer (e.g. 413) before taking the whole body: once it has, its answer is what counts.
        if (!answering) broken(error);
      });
      request.on('response', (response) => {
        answering = true;
        clearTimeout(connectTimer);
        request.setTimeout(idleTimeoutMs);
        const chunks: Buffer[] = [];
        let kept = 0;
        response.on('data', (chunk: Buffer) => {
          if (kept >= MAX_ANSWER_BYTES) return;
          chunks.push(chunk);
          kept += chunk.length;
        });
        response.on('error', (error) => {
          answering = false;
          fail(`the answer was cut off: ${error.message}`, error);
        });
        response.on('close', () => {
          if (!response.complete) fail('the answer was cut off');
        });
        response.on('end', () => {
          if (settled) return;
          settled = true;
          if (!sent) request.destroy();
          const header = (name: string) => {
            const value = response.headers[name];
            return Array.isArray(value) ? value.join(', ') : (value ?? '');
          };
          resolve({
            status: response.statusCode ?? 0,
            statusText: response.statusMessage ?? '',
            contentType: header('content-type'),
            warning: header('warning'),
            body: Buffer.concat(chunks),
          });
        });
      });

      pipeline(async function* () {
        yield head;
        yield* createReadStream(path, { highWaterMark: 1024 * 1024 });
        yield tail;
      }, request).catch((error: unknown) => {
        if (!answering) broken(error as NodeJS.ErrnoException);
      });
    });
  }

  /** Success, PacsRefused or a transient Error, from the answer's HTTP status and its Store Instances Response. */
  private judge(answer: Answer, instance: StoredInstance): void {
    const dataset = parseDicomJson(answer.body);
    const ours = (item: DicomJson) => firstString(item, REFERENCED_SOP_INSTANCE_UID) === instance.sopInstanceUid;
    const failures = sequence(dataset, FAILED_SOP_SEQUENCE);
    const referenced = sequence(dataset, REFERENCED_SOP_SEQUENCE);
    // A one-instance request: a failure item without a UID (a PACS that could not read the file) is ours too.
    const failure =
      failures.find(ours) ??
      (failures.length === 1 && firstString(failures[0]!, REFERENCED_SOP_INSTANCE_UID) === undefined
        ? failures[0]
        : undefined);
    const reason = failure ? firstNumber(failure, FAILURE_REASON) : undefined;
    if (reason !== undefined && ALREADY_HELD.has(reason)) return;

    const status = answer.status;
    const statusLine = `HTTP ${status}${answer.statusText ? ` ${answer.statusText}` : ''}`;
    const said = [statusLine];
    if (failure) said.push(`Failure Reason ${describeReason(reason)}`);
    const detail = failure ? firstString(failure, FAILURE_DETAIL_GOOGLE) : undefined;
    if (detail) said.push(detail);
    if (answer.warning) said.push(`Warning: ${answer.warning}`);
    if (!dataset) {
      const text = readableText(answer);
      if (text) said.push(text);
    }
    const explain = said.join('; ');
    const refused = (why: string) =>
      new PacsRefused(`${this.description} refused SOP instance ${instance.sopInstanceUid}: ${why} (${explain})`, {
        httpStatus: status,
        ...(reason === undefined ? {} : { failureReason: reason }),
      });
    const transient = (why: string) =>
      new Error(`${this.description} did not store SOP instance ${instance.sopInstanceUid}: ${why} (${explain})`);

    // Out of resources (0xA7xx) is the PACS's state, not the instance's: worth a retry.
    if (reason !== undefined && reason >= 0xa700 && reason <= 0xa7ff) throw transient('the PACS is out of resources');
    if (status >= 200 && status < 300) {
      if (failure) throw refused('it failed to store it');
      if (referenced.some(ours)) return;
      if (referenced.length > 0) {
        const others = referenced.map((item) => firstString(item, REFERENCED_SOP_INSTANCE_UID) ?? '?').join(', ');
        throw refused(`it stored ${others} instead: the file is not the instance it was sent as`);
      }
      // 200/204 with no Store Instances Response: all stored (PS3.18 10.5.3). 202 should have said which.
      if (status === 202) throw transient('it accepted the request without saying whether it stored the instance');
      return;
    }
    if (REFUSING_STATUSES.has(status)) throw refused('the PACS refused the file');
    if (status >= 500) throw transient('a PACS server error');
    throw transient('the request was not accepted (check the PACS URL, credentials and permissions)');
  }
}

function parseDicomJson(body: Buffer): DicomJson | undefined {
  const text = body.toString('utf8').trim();
  if (!text.startsWith('{') && !text.startsWith('[')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    const dataset: unknown = Array.isArray(value) ? value[0] : value;
    return dataset && typeof dataset === 'object' ? (dataset as DicomJson) : undefined;
  } catch {
    return undefined;
  }
}

function sequence(dataset: DicomJson | undefined, tag: string): DicomJson[] {
  const items = dataset?.[tag]?.Value;
  return Array.isArray(items) ? items.filter((i): i is DicomJson => !!i && typeof i === 'object') : [];
}

function firstString(item: DicomJson, tag: string): string | undefined {
  const value = item[tag]?.Value?.[0];
  return typeof value === 'string' ? value.trim() : undefined;
}

function firstNumber(item: DicomJson, tag: string): number | undefined {
  const value = item[tag]?.Value?.[0];
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\d+$/.test(value.trim())) return Number(value);
  return undefined;
}

const REASONS = new Map([
  [0x0110, 'processing failure'],
  [0x0111, 'duplicate SOP instance'],
  [0x0122, 'SOP class not supported'],
  [0x0124, 'not authorised'],
  [0xb00e, 'SOP instance already exists'],
  [0xc122, 'transfer syntax not supported'],
]);
const REASON_RANGES: [number, number, string][] = [
  [0xa700, 0xa7ff, 'out of resources'],
  [0xa900, 0xa9ff, 'data set does not match SOP class'],
  [0xc000, 0xcfff, 'cannot understand'],
];

/** A Failure Reason in hex, with its meaning (PS3.18 10.5.3, PS3.4 B.2.3) where known. */
function describeReason(reason: number | undefined): string {
  if (reason === undefined) return 'not given';
  const hex = `0x${reason.toString(16).toUpperCase().padStart(4, '0')}`;
  const meaning = REASONS.get(reason) ?? REASON_RANGES.find(([low, high]) => reason >= low && reason <= high)?.[2];
  return meaning ? `${hex} (${meaning})` : hex;
}

/** A short, printable piece of a non-DICOM answer (an HTML or plain-text error page). */
function readableText(answer: Answer): string {
  if (/json|xml|text|html/i.test(answer.contentType) || answer.contentType === '') {
    const text = answer.body
      .subarray(0, 2000)
      .toString('utf8')
      .replace(/<[^>]*>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
    return text.length > 300 ? `${text.slice(0, 300)}…` : text;
  }
  return '';
}
