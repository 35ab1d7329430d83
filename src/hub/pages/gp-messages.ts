import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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
import { RuleError } from '../../store/errors.js';
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

  /** The page, with the status filter from the query and any problem from a refused retry. */
  async function showPage(request: FastifyRequest, reply: FastifyReply, problems: FieldErrors = {}) {
    const query = (request.query ?? {}) as Record<string, string>;
    const errors: FieldErrors = { ...problems };
    let status: CommunicationStatus | undefined;
    if (query.status) {
      if ((COMMUNICATION_STATUSES as readonly string[]).includes(query.status)) {
        status = query.status as CommunicationStatus;
      } else errors.status = 'Choose a status from the list';
    }
    const now = new Date();
    const [counts, unacknowledged, problemRows, recent] = await Promise.all([
      gpMessageCounts(db),
      unacknowledgedAlerts(db, now, limitHours),
      gpMessageProblems(db),
      recentGpMessages(db, { status, limit: 50 }),
    ]);
    const shown = [...unacknowledged, ...problemRows.failed, ...problemRows.waiting, ...recent];
    await recordAudit(db, actorOf(request), {
      action: 'gp_messages.view',
      entityType: 'communication',
      detail: {
        status: status ?? null,
        counts,
        // Who was on the page: ids only.
        communicationIds: [...new Set(shown.map((m) => m.id))],
        participantIds: [...new Set(shown.map((m) => m.participant_id))],
      },
    });
    const code = Object.keys(problems).length > 0 ? 422 : errors.status ? 400 : 200;
    return page(request, reply.code(code), 'gp-messages.njk', {
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
      failed: problemRows.failed,
      waiting: problemRows.waiting,
      recent,
    });
  }

  app.get(PATH, { preHandler: pageNeeds('letters.send') }, (request, reply) => showPage(request, reply));

  app.post(`${PATH}/:id/retry`, { preHandler: pageNeeds('letters.send') }, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!z.uuid().safeParse(id).success) return reply.callNotFound();
    let resend: boolean;
    try {
      ({ resend } = await retryGpMessage(db, id, actorOf(request)));
    } catch (error) {
      // Not retried (already on its way, being sent now): the page again, saying why.
      if (error instanceof RuleError) return showPage(request, reply, { attention: error.message });
      throw error;
    }
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
