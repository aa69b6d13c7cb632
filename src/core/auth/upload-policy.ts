import { narrowTypes, type TenantPolicy } from '../tenancy.js';
import type { TokenScope } from './upload-tokens.js';

/** What one request may upload: its tenant's policy, narrowed by the upload token it carries. */
export interface UploadPolicy {
  readonly tenant: string;
  readonly maxSize: number;
  readonly allowedTypes: readonly string[];
  /** Set by a token: every upload goes into this folder. */
  readonly folder: string | undefined;
  readonly maxConcurrentUploads: number;
}

export function uploadPolicy(tenant: string, policy: TenantPolicy, scope: TokenScope | undefined): UploadPolicy {
  return {
    tenant,
    maxSize: Math.min(policy.maxSize, scope?.maxSize ?? Number.POSITIVE_INFINITY),
    allowedTypes: narrowTypes(policy.allowedTypes, scope?.allowedTypes),
    folder: scope?.folder,
    maxConcurrentUploads: policy.maxConcurrentUploads,
  };
}
