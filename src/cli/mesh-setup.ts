/**
 * Where the hub's GP messages go: a real MESH mailbox named by the environment, or, for a local demo, a MESH-style
 * test mailbox in the same process with a simulated system at every demo GP practice that reads its results and
 * acknowledges them (src/mesh/).
 */
import { startGpSystem, type RunningGpSystem } from '../mesh/gp-system.js';
import type { MeshSettings } from '../mesh/mesh-client.js';
import { startTestMailbox, TEST_MESH_SHARED_KEY, type TestMailbox } from '../mesh/test-mailbox.js';
import type { Db } from '../store/database.js';

const MESH_VARIABLES = ['MESH_URL', 'MESH_MAILBOX', 'MESH_PASSWORD', 'MESH_SHARED_KEY'] as const;

/** MESH settings from MESH_URL, MESH_MAILBOX, MESH_PASSWORD and MESH_SHARED_KEY: all four, or none (undefined). */
export function meshSettingsFromEnv(env: NodeJS.ProcessEnv): MeshSettings | undefined {
  const given = MESH_VARIABLES.filter((name) => env[name]);
  if (given.length === 0) return undefined;
  const missing = MESH_VARIABLES.filter((name) => !env[name]);
  if (missing.length > 0)
    throw new Error(`GP messages by MESH need all of ${MESH_VARIABLES.join(', ')}: ${missing.join(', ')} not set`);
  return {
    url: env.MESH_URL!,
    mailbox: env.MESH_MAILBOX!,
    password: env.MESH_PASSWORD!,
    sharedKey: env.MESH_SHARED_KEY!,
    ...(env.MESH_POLL_SECONDS ? { pollIntervalSeconds: Number(env.MESH_POLL_SECONDS) } : {}),
  };
}

export interface DemoMesh {
  settings: MeshSettings;
  mailbox: TestMailbox;
  practices: RunningGpSystem[];
  close(): Promise<void>;
}

const DEMO_HUB_MAILBOX = { id: 'DEMOHUB001', password: 'demo-hub-mailbox' };

/** A test mailbox on a loopback port, the hub's mailbox and one for each GP practice that has one, each answered. */
export async function startDemoMesh(db: Db): Promise<DemoMesh> {
  const practices = await db
    .selectFrom('gp_practice')
    .select(['ods_code', 'name', 'mesh_mailbox'])
    .where('mesh_mailbox', 'is not', null)
    .execute();
  const accounts = practices.map((p) => ({ id: p.mesh_mailbox!, password: `demo-${p.ods_code}` }));
  const mailbox = await startTestMailbox({
    host: '127.0.0.1',
    sharedKey: TEST_MESH_SHARED_KEY,
    mailboxes: [DEMO_HUB_MAILBOX, ...accounts],
  });
  const systems = practices.map((p, i) =>
    startGpSystem(
      { url: mailbox.url, sharedKey: TEST_MESH_SHARED_KEY, mailbox: accounts[i]!.id, password: accounts[i]!.password },
      {
        name: p.name,
        intervalMs: 10_000,
        onError: (e) => console.error(`Demo GP practice ${p.ods_code}: ${e.message}`),
      },
    ),
  );
  return {
    settings: {
      url: mailbox.url,
      mailbox: DEMO_HUB_MAILBOX.id,
      password: DEMO_HUB_MAILBOX.password,
      sharedKey: TEST_MESH_SHARED_KEY,
      pollIntervalSeconds: 10,
    },
    mailbox,
    practices: systems,
    async close() {
      await Promise.all(systems.map((s) => s.stop()));
      await mailbox.close();
    },
  };
}
