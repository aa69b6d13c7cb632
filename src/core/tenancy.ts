/** Every upload and file belongs to a tenant; without keys every request is tenant `default`. */
export const DEFAULT_TENANT = 'default';

/** Tenant names: short, safe in keys, paths and logs. */
export const TENANT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** What a tenant may do; per-tenant settings override the global ones field by field. */
export interface TenantPolicy {
  readonly maxSize: number;
  readonly retentionMs: number;
  readonly maxRetentionMs: number;
  /** Media type patterns (`image/*`, `application/pdf`, `*`). */
  readonly allowedTypes: readonly string[];
  /** PATCHes of this tenant in flight at once in one process; more are answered 429. */
  readonly maxConcurrentUploads: number;
}

export class TenantPolicies {
  constructor(
    private readonly defaults: TenantPolicy,
    private readonly overrides: Readonly<Record<string, Partial<TenantPolicy>>> = {},
  ) {}

  for(tenant: string): TenantPolicy {
    const override = Object.hasOwn(this.overrides, tenant) ? this.overrides[tenant] : undefined;
    return override ? { ...this.defaults, ...override } : this.defaults;
  }
}

/** Whether `type` matches one of the patterns (`*`, `type/*`, `type/subtype`). */
export function typeAllowed(type: string, patterns: readonly string[]): boolean {
  const [major] = type.split('/');
  return patterns.some(
    (pattern) => pattern === '*' || pattern === '*/*' || pattern === type || pattern === `${major}/*`,
  );
}

/** The types both lists allow (a token can only narrow what its tenant may upload). */
export function narrowTypes(outer: readonly string[], inner: readonly string[] | undefined): readonly string[] {
  if (!inner) return outer;
  if (outer.some((pattern) => pattern === '*' || pattern === '*/*')) return inner;
  return inner.filter((pattern) => (pattern.endsWith('/*') ? outer.includes(pattern) : typeAllowed(pattern, outer)));
}
