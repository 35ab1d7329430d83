import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MllpDecoder, mllpFrame, OVERSIZE_HEAD_BYTES, type MllpEvent } from '../../../src/hl7/mllp.js';

const frames = (events: MllpEvent[]) =>
  events.filter((e) => e.kind === 'frame').map((e) => (e.kind === 'frame' ? e.payload.toString('utf8') : ''));

describe('MLLP framing', () => {
  it('frames a message as 0x0B … 0x1C 0x0D', () => {
    expect([...mllpFrame('MSH|x')]).toEqual([0x0b, ...Buffer.from('MSH|x'), 0x1c, 0x0d]);
  });

  it('reads two messages from one chunk', () => {
    const decoder = new MllpDecoder(1000);
    const events = decoder.push(Buffer.concat([mllpFrame('one'), mllpFrame('two')]));
    expect(events).toEqual([
      { kind: 'frame', payload: Buffer.from('one') },
      { kind: 'frame', payload: Buffer.from('two') },
    ]);
    expect(decoder.unfinished).toBe(0);
  });

  it('reads a message split across chunks at every byte, including between 0x1C and 0x0D', () => {
    const wire = Buffer.concat([mllpFrame('MSH|^~\\&|split'), mllpFrame('second')]);
    for (let cut = 1; cut < wire.length; cut++) {
      const decoder = new MllpDecoder(1000);
      const events = [...decoder.push(wire.subarray(0, cut)), ...decoder.push(wire.subarray(cut))];
      expect(frames(events)).toEqual(['MSH|^~\\&|split', 'second']);
    }
  });

  it('reads any messages however the stream is chunked (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'grapheme', maxLength: 40 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 50 }),
        (messages, sizes) => {
          const clean = messages.map((m) => m.replaceAll('\u000b', '').replaceAll('\u001c', ''));
          const wire = Buffer.concat(clean.map((m) => mllpFrame(m)));
          const decoder = new MllpDecoder(10_000);
          const events: MllpEvent[] = [];
          let at = 0;
          for (let i = 0; at < wire.length; i++) {
            const size = sizes[i % sizes.length] as number;
            events.push(...decoder.push(wire.subarray(at, at + size)));
            at += size;
          }
          expect(frames(events)).toEqual(clean);
        },
      ),
    );
  });

  it('skips and reports bytes outside frames, and keeps a lone 0x1C inside a message', () => {
    const decoder = new MllpDecoder(1000);
    const events = decoder.push(
      Buffer.concat([Buffer.from('noise\n'), mllpFrame(Buffer.from([0x41, 0x1c, 0x42])), Buffer.from('\r\n')]),
    );
    expect(events).toEqual([
      { kind: 'garbage', bytes: 6 },
      { kind: 'frame', payload: Buffer.from([0x41, 0x1c, 0x42]) },
      { kind: 'garbage', bytes: 2 },
    ]);
  });

  it('drops an unfinished frame when a new one starts', () => {
    const decoder = new MllpDecoder(1000);
    const events = decoder.push(Buffer.concat([Buffer.from([0x0b]), Buffer.from('lost'), mllpFrame('kept')]));
    expect(events).toEqual([
      { kind: 'garbage', bytes: 5 },
      { kind: 'frame', payload: Buffer.from('kept') },
    ]);
  });

  it('refuses a frame over the size limit, keeping its first bytes only, and goes on to the next', () => {
    const decoder = new MllpDecoder(10_000);
    const big = 'MSH|^~\\&|EPR|RX1|||x||ORU^R01|BIG1|P|2.5\r' + 'X'.repeat(20_000);
    const wire = Buffer.concat([mllpFrame(big), mllpFrame('small')]);
    const events: MllpEvent[] = [];
    for (let at = 0; at < wire.length; at += 999) events.push(...decoder.push(wire.subarray(at, at + 999)));
    expect(events).toHaveLength(2);
    const [oversize, next] = events;
    expect(oversize?.kind).toBe('oversize');
    if (oversize?.kind !== 'oversize') return;
    expect(oversize.size).toBe(Buffer.byteLength(big));
    expect(oversize.head.length).toBe(OVERSIZE_HEAD_BYTES);
    expect(oversize.head.toString('latin1')).toMatch(/^MSH\|.*\|BIG1\|/);
    expect(next).toEqual({ kind: 'frame', payload: Buffer.from('small') });
  });

  it('tells what is left unfinished when the connection ends', () => {
    const decoder = new MllpDecoder(1000);
    expect(decoder.push(Buffer.from([0x0b, 0x41, 0x42]))).toEqual([]);
    expect(decoder.unfinished).toBe(3);
  });
});
