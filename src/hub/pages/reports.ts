import type { FastifyInstance } from 'fastify';
import { pageNeeds } from '../auth.js';
import { page } from '../render.js';

/** The reports there are, each on its own page (kc62.ts, uptake.ts, kpis.ts). */
const REPORTS = [
  {
    href: '/reports/kc62',
    title: 'KC62 and KC63',
    description:
      'The NHS Breast Screening Programme central return for a reporting year (1 April to 31 March), and coverage at 31 March, from the live data: every number opens the list behind it; CSV and XLSX in the return’s layout.',
  },
  {
    href: '/reports/uptake',
    title: 'Uptake and coverage',
    description:
      'By age band, deprivation (IMD quintile) and GP practice, with confidence intervals, the trend over rounds and a ranked chart.',
  },
  {
    href: '/reports/kpis',
    title: 'Key performance indicators',
    description:
      'Uptake, coverage, round length, results and assessment times, referral and cancer detection rates against NHSBSP standards, national averages and the office’s own history; interventions before and after.',
  },
];

export function registerReportPages(app: FastifyInstance): void {
  app.get('/reports', { preHandler: pageNeeds('reports.view') }, async (request, reply) =>
    page(request, reply, 'reports.njk', { title: 'Reports', reports: REPORTS }),
  );
}
