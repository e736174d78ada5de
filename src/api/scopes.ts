import type { FastifyInstance } from 'fastify';

/**
 * What a caller's key must allow for a route: `read` for GETs, `run` to start and cancel,
 * `approve` to approve or reject, `admin` for keys and audit; `public` needs no key (health, docs).
 */
export const scopes = ['read', 'run', 'approve', 'admin'] as const;
export type Scope = (typeof scopes)[number] | 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a caller needs: every route declares one. */
    scope?: Scope;
  }
}

/** Where the interactive docs (swagger UI) live; its own routes serve static pages and are not part of the API. */
export const DOCS_PREFIX = '/docs';

/** Refuses to register a route that does not say which scope it needs, so none is open by mistake. */
export function requireScopes(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    // Routes the swagger UI plugin adds serve its static pages, which hold no data.
    if (route.url.startsWith(DOCS_PREFIX)) {
      route.config = { ...route.config, scope: 'public' };
      return;
    }
    const scope = route.config?.scope;
    if (!scope) throw new Error(`route ${String(route.method)} ${route.url} declares no scope (config.scope)`);
  });
}
