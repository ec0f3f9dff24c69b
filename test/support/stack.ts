/** The stack name the tests' adapters tag with and filter on (serverless.yml: `<service>-<stage>`). */
export const TEST_STACK = 'runctl-test';
