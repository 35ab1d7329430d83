import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the nearest folder above this file with a package.json (works from src/ and from dist/). */
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

export const packageRoot = findPackageRoot();
/** Non-TypeScript assets stay in src/ and are read from there by both the sources and the build. */
export const migrationsDir = join(packageRoot, 'src', 'store', 'migrations');
export const viewsDir = join(packageRoot, 'src', 'hub', 'views');
export const nhsukFrontendDir = join(packageRoot, 'node_modules', 'nhsuk-frontend', 'dist');
export const publicDir = join(packageRoot, 'src', 'hub', 'public');
