import type { FastifyInstance } from 'fastify';
import type { HubOptions } from '../app.js';

/** Placeholder: filled in by issue 6. */
export function registerGpMessagePages(app: FastifyInstance, options: HubOptions): void {
  void app;
  void options;
}
