import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncPath } from '../durable.js';

/**
 * Appends one JSON line to a file and fsyncs it (and, for a new file, its folder) before returning: once this
 * returns, the line survives a power cut.
 */
export function appendLineDurably(file: string, value: unknown): void {
  const created = !existsSync(file);
  const fd = openSync(file, 'a', 0o600);
  try {
    const line = Buffer.from(JSON.stringify(value) + '\n');
    let written = 0;
    while (written < line.length) written += writeSync(fd, line, written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (created) fsyncPath(dirname(file));
}

/**
 * Reads a JSON-lines file written by appendLineDurably. Bytes after the last newline were being written when the
 * process stopped (never fsynced, so never acknowledged): they are cut off the file, so the next line appended starts
 * clean. Complete lines that are not JSON are counted as damaged and skipped.
 */
export function readLines(file: string): { values: unknown[]; damaged: number } {
  if (!existsSync(file)) return { values: [], damaged: 0 };
  const bytes = readFileSync(file);
  const end = bytes.lastIndexOf(0x0a) + 1;
  if (end < bytes.length) {
    const fd = openSync(file, 'r+');
    try {
      ftruncateSync(fd, end);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  const values: unknown[] = [];
  let damaged = 0;
  for (const line of bytes.subarray(0, end).toString('utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      values.push(JSON.parse(line));
    } catch {
      damaged++;
    }
  }
  return { values, damaged };
}
