import type { FastifyInstance } from 'fastify';
import type { HubOptions } from '../app.js';

/** Placeholder: filled in by issue 7. */
export function registerUptakePages(app: FastifyInstance, options: HubOptions): void {
  void app;
  void options;
}
