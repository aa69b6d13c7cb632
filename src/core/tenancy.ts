/** Every upload and file belongs to a tenant; without auth every request is tenant `default`. */
export const DEFAULT_TENANT = 'default';
