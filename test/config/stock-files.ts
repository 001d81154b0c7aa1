import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Where the testbed keeps the original conffiles of the .debs it installs. */
const CACHE = '/var/cache/pptp-testbed/pkg-conffiles';

/**
 * The .deb's original of `etcPath` (e.g. "/etc/ppp/pptpd-options") when the testbed cache has
 * it (any layout below CACHE whose path ends with etcPath or its base name), else our fixture
 * `fixture` modelled on it.
 */
export function stockFile(etcPath: string, fixture: string): { path: string; fromCache: boolean } {
  const found = existsSync(CACHE) ? findUnder(CACHE, etcPath) : undefined;
  if (found) return { path: found, fromCache: true };
  return { path: new URL(`./fixtures/${fixture}`, import.meta.url).pathname, fromCache: false };
}

function findUnder(dir: string, etcPath: string): string | undefined {
  const base = etcPath.split('/').at(-1)!;
  const stack = [dir];
  let byBase: string | undefined;
  while (stack.length > 0) {
    const d = stack.pop()!;
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) stack.push(p);
      else if (p.endsWith(etcPath)) return p;
      else if (entry.name === base) byBase ??= p;
    }
  }
  return byBase;
}
