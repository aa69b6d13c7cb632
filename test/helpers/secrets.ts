/**
 * The shared secrets Ferry requires in distributed mode (FERRY_TOKEN_SECRET, FERRY_SIGNING_SECRET),
 * given to every Ferry a test starts unless the test overrides them. Test-only values.
 */
export const TEST_SECRETS: Readonly<Record<string, string>> = {
  FERRY_TOKEN_SECRET: 'test-token-secret-0123456789abcdef',
  FERRY_SIGNING_SECRET: 'test-signing-secret-0123456789abcdef',
};
