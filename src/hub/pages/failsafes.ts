import type { FastifyInstance } from 'fastify';
import type { HubOptions } from '../app.js';

/** Placeholder: filled in by issue 6. */
export function registerFailsafePages(app: FastifyInstance, options: HubOptions): void {
  void app;
  void options;
}
