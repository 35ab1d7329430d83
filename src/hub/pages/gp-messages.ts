import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { MESH_DEFAULTS, MeshClient } from '../../mesh/mesh-client.js';
import { duration } from '../../pathway/dates.js';
import {
  COMMUNICATION_KIND_LABELS,
  COMMUNICATION_STATUS_LABELS,
  COMMUNICATION_STATUSES,
  type CommunicationStatus,
} from '../../pathway/screening-outcomes.js';
import { recordAudit } from '../../store/audit.js';
import {
  gpMessageCounts,
  gpMessageProblems,
  recentGpMessages,
  retryGpMessage,
  runGpMessageWorker,
  unacknowledgedAlerts,
} from '../../store/gp-messages.js';
import type { HubOptions } from '../app.js';
import { actorOf, pageNeeds } from '../auth.js';
import type { FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';

const PATH = '/communications/gp-messages';

/**
 * GP messages: results going to GP practices by MESH (src/store/gp-messages.ts). The page shows how many are at each
 * step, what needs attention (failed, waiting to try again, not acknowledged in time) and the latest messages with
 * their timeline; "Retry now" sends a failed or waiting one again. Needs letters.send. With options.mesh the hub runs
 * the worker every pollIntervalSeconds (default 30); without it GP messages stay queued and the page says so.
 */
export function registerGpMessagePages(app: FastifyInstance, options: HubOptions): void {
  const { db, mesh } = options;
  const limitHours = mesh?.acknowledgementLimitHours ?? MESH_DEFAULTS.acknowledgementLimitHours;
  const worker = mesh ? startWorker(app, options) : null;

  app.get(PATH, { preHandler: pageNeeds('letters.send') }, async (request, reply) => {
    const query = (request.query ?? {}) as Record<string, string>;
    const errors: FieldErrors = {};
    let status: CommunicationStatus | undefined;
    if (query.status) {
      if ((COMMUNICATION_STATUSES as readonly string[]).includes(query.status)) {
        status = query.status as CommunicationStatus;
      } else errors.status = 'Choose a status from the list';
    }
    const now = new Date();
    const [counts, unacknowledged, problems, recent] = await Promise.all([
      gpMessageCounts(db),
      unacknowledgedAlerts(db, now, limitHours),
      gpMessageProblems(db),
      recentGpMessages(db, { status, limit: 50 }),
    ]);
    const people = new Set(
      [...unacknowledged, ...problems.failed, ...problems.waiting, ...recent].map((m) => m.participant_id),
    );
    await recordAudit(db, actorOf(request), {
      action: 'gp_messages.view',
      entityType: 'communication',
      detail: { status: status ?? null, peopleShown: people.size, counts },
    });
    return page(request, reply.code(errors.status ? 400 : 200), 'gp-messages.njk', {
      title: 'GP messages',
      errors,
      values: { status: query.status ?? '' },
      mesh: mesh ? { mailbox: mesh.mailbox.toUpperCase(), interval: duration(worker?.intervalSeconds ?? 0) } : null,
      limitHours,
      counts,
      statuses: COMMUNICATION_STATUSES,
      statusLabels: COMMUNICATION_STATUS_LABELS,
      kindLabels: COMMUNICATION_KIND_LABELS,
      unacknowledged,
      failed: problems.failed,
      waiting: problems.waiting,
      recent,
    });
  });

  app.post(`${PATH}/:id/retry`, { preHandler: pageNeeds('letters.send') }, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!z.uuid().safeParse(id).success) return reply.callNotFound();
    const { resend } = await retryGpMessage(db, id, actorOf(request));
    worker?.kick();
    return redirectWithMessage(
      reply,
      PATH,
      !mesh
        ? 'The message is queued again. No MESH mailbox is configured, so it will wait until one is.'
        : resend
          ? 'The result will be sent to the practice again as a new message, within a minute.'
          : 'The message will be sent again within a minute.',
    );
  });
}

/** Runs the GP message worker every pollIntervalSeconds until the hub closes; a failed run is logged and retried. */
function startWorker(app: FastifyInstance, options: HubOptions) {
  const settings = options.mesh!;
  const client = new MeshClient(settings);
  const intervalSeconds = settings.pollIntervalSeconds ?? MESH_DEFAULTS.pollIntervalSeconds;
  let running: Promise<void> | null = null;
  let closed = false;
  const run = () => {
    if (running || closed) return;
    running = runGpMessageWorker(options.db, client)
      .then(({ send, poll }) => {
        const changed = send.sent + send.failed + poll.delivered + poll.acknowledged + poll.failed;
        if (changed > 0) app.log.info({ send, poll }, 'GP messages');
      })
      .catch((error: Error) => app.log.warn(`GP message worker: ${error.message}`))
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(run, intervalSeconds * 1000);
  timer.unref();
  app.addHook('onClose', async () => {
    closed = true;
    clearInterval(timer);
    await running;
  });
  return { intervalSeconds, kick: () => setImmediate(run) };
}
