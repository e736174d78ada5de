/**
 * Where a cache refresh may send requests, and how a row becomes a URL. A URL template names
 * columns in braces (`https://api.example.com/products/{product_id}`); each value is
 * percent-encoded, and placeholders may only stand in the path or the query, so a row's value can
 * never change which host is asked.
 */

const PLACEHOLDER = /\{([^{}]*)\}/g;

/** The columns a template names, in order of appearance. */
export const templateColumns = (template: string): string[] => [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);

/** What is wrong with a URL template, or undefined when it is usable. */
export function checkTemplate(template: string): string | undefined {
  let url: URL;
  try {
    url = new URL(template.replace(PLACEHOLDER, 'x'));
  } catch {
    return 'must be an absolute http(s) URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an absolute http(s) URL';
  if (url.username || url.password) return 'must not carry credentials: name headers from environment variables instead';
  const pathStart = template.indexOf('/', template.indexOf('//') + 2);
  const firstPlaceholder = template.search(PLACEHOLDER);
  if (firstPlaceholder !== -1 && (pathStart === -1 || firstPlaceholder < pathStart)) return 'placeholders may appear only in the path or the query, not in the host';
  if (/[{}]/.test(template.replace(PLACEHOLDER, ''))) return 'has an unbalanced "{" or "}"';
  return undefined;
}

/** The URL for one row: each placeholder replaced by the row's value, percent-encoded. */
export function expandTemplate(template: string, row: Record<string, unknown>): string {
  return template.replace(PLACEHOLDER, (_, column: string) => encodeURIComponent(String(row[column])));
}

/** An origin the worker may call: scheme, host and port (or any port). */
export interface OriginRule {
  protocol: 'http:' | 'https:';
  hostname: string;
  /** A port number, or '*' for any. */
  port: string;
}

const ORIGIN = /^(https?):\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}|\*))?\/?$/;
const DEFAULT_PORT = { 'http:': '80', 'https:': '443' } as const;

/** `https://api.example.com`, `http://127.0.0.1:8080` or `http://localhost:*`; undefined when malformed. */
export function parseOriginRule(text: string): OriginRule | undefined {
  const m = ORIGIN.exec(text.trim());
  if (!m) return undefined;
  const protocol = `${m[1]}:` as OriginRule['protocol'];
  return { protocol, hostname: m[2]!.toLowerCase(), port: m[3] ?? DEFAULT_PORT[protocol] };
}

/** True when `url`'s origin is one of the rules'. */
export function originAllowed(rules: readonly OriginRule[], url: string): boolean {
  const u = new URL(url);
  const port = u.port || DEFAULT_PORT[u.protocol as OriginRule['protocol']];
  return rules.some((r) => r.protocol === u.protocol && r.hostname === u.hostname.toLowerCase() && (r.port === '*' || r.port === port));
}

/** The origin every URL built from a template goes to (placeholders never reach the host). */
export const templateOrigin = (template: string): string => new URL(template.replace(PLACEHOLDER, 'x')).origin;
