/**
 * The hub's gateway listener in a process of its own, for tests that kill it with SIGKILL mid-upload
 * (test/integration/transfer-faults.test.ts). It opens the database given (`--database URL`: PostgreSQL; or
 * `--pglite DIR`: PGlite in a folder), migrates it, starts the gateway listener on `--port` with its transfers
 * (uploads, restored files and the file archive) in `--dir`, and prints one line on stdout when it is up:
 *
 *   ready <port> <fingerprint of the gateway authority>
 *
 * SIGTERM closes it cleanly (the listener, then the database), so a test can open a PGlite folder after it.
 *
 *   node --import tsx test/support/transfer-hub-process.ts --port 8443 --dir DIR (--database URL | --pglite DIR)
 */
import { parseArgs } from 'node:util';
import { openDatabase } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrate.js';
import { fingerprint } from '../../src/tls/certificates.js';
import { gatewayListener } from './gateway-hub.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    dir: { type: 'string' },
    database: { type: 'string' },
    pglite: { type: 'string' },
    'checkpoint-bytes': { type: 'string', default: String(256 * 1024) },
  },
});
if (!values.port || !values.dir || !(values.database || values.pglite))
  throw new Error('transfer-hub-process needs --port, --dir and --database URL or --pglite DIR');

const database = await openDatabase(
  values.database ? { kind: 'postgres', url: values.database } : { kind: 'pglite', dataDir: values.pglite! },
);
await migrate(database);
const listener = await gatewayListener(database, Number(values.port), {
  dir: values.dir,
  checkpointBytes: Number(values['checkpoint-bytes']),
});
process.once('SIGTERM', () => {
  void listener
    .close()
    .then(() => database.close())
    .finally(() => process.exit(0));
});
console.log(`ready ${listener.port} ${fingerprint(listener.authorityPem)}`);
