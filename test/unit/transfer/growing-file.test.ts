import { appendFileSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FileGrowth, readGrowingFile } from '../../../src/transfer/growing-file.js';

const collect = async (stream: Readable) => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('reading a file as it is written', () => {
  it('follows the writer to the length it finishes at, across a rename, never past what it says is written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'growing-'));
    const part = join(dir, 'p.pkg.part');
    const whole = join(dir, 'p.pkg');
    const growth = new FileGrowth();
    // Bytes in the file beyond what the writer has said are not read (the writer may still change them).
    writeFileSync(part, Buffer.alloc(100, 1));
    growth.grew(60);
    const reading = collect(readGrowingFile([part, whole], growth, { pollMs: 5 }));
    await pause(30);
    appendFileSync(part, Buffer.alloc(50, 2));
    growth.grew(150);
    renameSync(part, whole);
    await pause(30);
    growth.finish(150);
    const read = await reading;
    expect(read.length).toBe(150);
    expect(read.subarray(0, 100).every((b) => b === 1)).toBe(true);
    expect(read.subarray(100).every((b) => b === 2)).toBe(true);
  });

  it('opens the renamed file when the writer finished before the reader began, and starts where asked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'growing-'));
    const growth = new FileGrowth();
    writeFileSync(join(dir, 'p.pkg'), Buffer.from('0123456789'));
    growth.finish(10);
    expect(
      (await collect(readGrowingFile([join(dir, 'p.pkg.part'), join(dir, 'p.pkg')], growth, { start: 4 }))).toString(),
    ).toBe('456789');
  });

  it('fails when the writer gives the file up, or when it stops growing for the idle limit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'growing-'));
    const path = join(dir, 'p');
    writeFileSync(path, Buffer.alloc(10));
    const given = new FileGrowth();
    given.grew(10);
    const reading = collect(readGrowingFile([path], given, { pollMs: 5 }));
    await pause(20);
    given.abandon();
    await expect(reading).rejects.toThrow(/given up/);

    const stalled = new FileGrowth();
    stalled.grew(10);
    await expect(collect(readGrowingFile([path], stalled, { pollMs: 5, idleMs: 50 }))).rejects.toThrow(/did not grow/);
  });

  it('shares its state with another thread through its buffer, and never goes back', () => {
    const growth = new FileGrowth();
    const other = new FileGrowth(growth.buffer);
    growth.grew(10);
    growth.grew(5);
    expect(other.written).toBe(10);
    expect(other.length).toBeUndefined();
    // A finished empty file is finished (0 is a length, not "not yet").
    const empty = new FileGrowth();
    empty.finish(0);
    expect(new FileGrowth(empty.buffer).length).toBe(0);
    other.finish(12);
    expect(growth.length).toBe(12);
    expect(growth.written).toBe(12);
    expect(() => new FileGrowth(new SharedArrayBuffer(8))).toThrow(/24-byte/);
  });
});
