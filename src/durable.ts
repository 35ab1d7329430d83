import { closeSync, fsyncSync, openSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';

/** fsyncs a file or folder by path: a new or renamed file's name survives a power cut once its folder is synced. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Moves a finished temporary file into place durably: its bytes, then the rename, then the folder. */
export function commitFile(temporary: string, target: string): void {
  fsyncPath(temporary);
  renameSync(temporary, target);
  fsyncPath(dirname(target));
}
