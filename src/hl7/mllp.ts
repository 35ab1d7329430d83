/**
 * MLLP framing (HL7 Minimal Lower Layer Protocol, release 2): each message travels as
 *   0x0B (start block) · message bytes · 0x1C (end block) · 0x0D (carriage return).
 *
 * The decoder takes TCP chunks as they come: a frame may be split across chunks, and one chunk may hold several
 * frames. Bytes outside a frame are garbage: they are skipped and reported, never read as a message. A frame
 * larger than the limit is not kept: its first bytes are (so that the reply can name its MSH-10), the rest is
 * skipped up to its end block, and it is reported as oversize. A start block inside a frame abandons the frame
 * before it (reported as garbage) and starts a new one.
 */

export const START_BLOCK = 0x0b;
export const END_BLOCK = 0x1c;
export const CARRIAGE_RETURN = 0x0d;

/** How many bytes of an oversize frame are kept, to read its MSH from. */
export const OVERSIZE_HEAD_BYTES = 4096;

export type MllpEvent =
  | { kind: 'frame'; payload: Buffer }
  | { kind: 'oversize'; head: Buffer; size: number }
  | { kind: 'garbage'; bytes: number };

/** Wraps a message in an MLLP frame. */
export function mllpFrame(message: string | Buffer): Buffer {
  const body = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  return Buffer.concat([Buffer.of(START_BLOCK), body, Buffer.of(END_BLOCK, CARRIAGE_RETURN)]);
}

export class MllpDecoder {
  private inFrame = false;
  private parts: Buffer[] = [];
  private size = 0;
  private kept = 0;
  private oversize = false;
  /** An end block was the last byte of the previous chunk: the frame ends if the next byte is CR. */
  private pendingEnd = false;
  private garbage = 0;

  constructor(readonly maxFrameBytes: number) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1)
      throw new RangeError('maxFrameBytes must be a whole number above 0');
  }

  /** Takes the next chunk; returns what it completed, in order. */
  push(chunk: Buffer): MllpEvent[] {
    const events: MllpEvent[] = [];
    let i = 0;
    if (this.pendingEnd) {
      this.pendingEnd = false;
      if (chunk[0] === CARRIAGE_RETURN) {
        this.finish(events);
        i = 1;
      } else {
        this.append(Buffer.of(END_BLOCK));
      }
    }
    while (i < chunk.length) {
      if (!this.inFrame) {
        const start = chunk.indexOf(START_BLOCK, i);
        if (start < 0) {
          this.garbage += chunk.length - i;
          break;
        }
        this.garbage += start - i;
        this.flushGarbage(events);
        this.begin();
        i = start + 1;
        continue;
      }
      const end = chunk.indexOf(END_BLOCK, i);
      const restart = chunk.indexOf(START_BLOCK, i);
      if (restart >= 0 && (end < 0 || restart < end)) {
        // A new frame began before this one ended: the unfinished one is dropped.
        this.garbage += 1 + this.size + (restart - i);
        this.flushGarbage(events);
        this.begin();
        i = restart + 1;
        continue;
      }
      if (end < 0) {
        this.append(chunk.subarray(i));
        break;
      }
      this.append(chunk.subarray(i, end));
      if (end + 1 >= chunk.length) {
        this.pendingEnd = true;
        break;
      }
      if (chunk[end + 1] === CARRIAGE_RETURN) {
        this.finish(events);
        i = end + 2;
      } else {
        // An end block not followed by CR is part of the message.
        this.append(Buffer.of(END_BLOCK));
        i = end + 1;
      }
    }
    this.flushGarbage(events);
    return events;
  }

  /** Bytes held for an unfinished frame (and skipped garbage not yet reported), at the end of a connection. */
  get unfinished(): number {
    return (this.inFrame ? 1 + this.size : 0) + this.garbage;
  }

  private begin(): void {
    this.inFrame = true;
    this.parts = [];
    this.size = 0;
    this.kept = 0;
    this.oversize = false;
  }

  private append(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.size += bytes.length;
    if (!this.oversize && this.size > this.maxFrameBytes) {
      this.oversize = true;
      this.parts = [Buffer.concat(this.parts).subarray(0, OVERSIZE_HEAD_BYTES)];
      this.kept = this.parts[0]?.length ?? 0;
    }
    const take = this.oversize ? Math.min(bytes.length, OVERSIZE_HEAD_BYTES - this.kept) : bytes.length;
    if (take > 0) {
      this.parts.push(Buffer.from(bytes.subarray(0, take)));
      this.kept += take;
    }
  }

  private finish(events: MllpEvent[]): void {
    const payload = Buffer.concat(this.parts);
    events.push(
      this.oversize
        ? { kind: 'oversize', head: payload.subarray(0, OVERSIZE_HEAD_BYTES), size: this.size }
        : { kind: 'frame', payload },
    );
    this.inFrame = false;
    this.parts = [];
    this.size = 0;
    this.kept = 0;
    this.oversize = false;
  }

  private flushGarbage(events: MllpEvent[]): void {
    if (this.garbage > 0) {
      events.push({ kind: 'garbage', bytes: this.garbage });
      this.garbage = 0;
    }
  }
}
