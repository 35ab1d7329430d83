// Starts the NHS design system's components (menus, error summary focus). Pages work without it.
import { initAll } from './nhsuk-frontend.min.js';
initAll();
