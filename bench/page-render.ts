/**
 * Time to render the staff pages' templates (no database, no HTTP), with the hub's template setup.
 *
 *   npx tsx bench/page-render.ts [--builtin-trim] [--renders 200]
 *
 * --builtin-trim puts back Nunjucks's own `trim` filter, to compare with the linear one the hub installs.
 */
import { parseArgs } from 'node:util';
import nunjucks from 'nunjucks';
import { configureTemplates } from '../src/hub/templates.js';
import { nhsukFrontendDir, viewsDir } from '../src/paths.js';

const { values } = parseArgs({
  options: { 'builtin-trim': { type: 'boolean', default: false }, renders: { type: 'string', default: '200' } },
});
const renders = Number(values.renders);
const env = new nunjucks.Environment(new nunjucks.FileSystemLoader([viewsDir, nhsukFrontendDir]), { autoescape: true });
const builtinTrim = env.getFilter('trim');
configureTemplates(env);
if (values['builtin-trim']) env.addFilter('trim', builtinTrim);

const common = {
  user: { displayName: 'Alex Admin', role: 'admin' },
  navigation: [{ href: '/participants', text: 'Participants', current: true }],
  csrfToken: 'token',
  errorList: [],
  errors: {},
  values: {},
  today: '2026-11-23',
  sources: [{ value: 'staff', text: 'Screening staff' }],
};
const pages: Record<string, object> = {
  'sign-in.njk': { title: 'Sign in' },
  'participant-search.njk': { title: 'Find a participant' },
  'record-item.njk': {
    title: 'Add',
    category: 'clinical',
    id: 'x',
    kinds: [{ value: 'implants', text: 'Breast implants' }],
  },
  'clinics.njk': {
    title: 'Clinics',
    clinics: [],
    sites: [],
    locations: [],
    filter: { from: '2026-11-23', to: '2026-12-06' },
  },
};
console.log(`| template | ms per render (${values['builtin-trim'] ? "Nunjucks's own trim" : 'linear trim'}) |`);
console.log('|---|---:|');
for (const [template, data] of Object.entries(pages)) {
  const context = { ...common, ...data };
  env.render(template, context);
  const started = performance.now();
  for (let i = 0; i < renders; i++) env.render(template, context);
  console.log(`| ${template} | ${((performance.now() - started) / renders).toFixed(2)} |`);
}
