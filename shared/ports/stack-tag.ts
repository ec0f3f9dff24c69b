/**
 * The stack tag. Several stages of runctl may share one AWS account and region, and EC2 has no
 * other boundary between them: every EC2 resource runctl creates (training instances and their
 * root volumes, helper and builder instances, dataset volumes, snapshots) carries
 * `runctl:stack = <service>-<stage>`, every listing filters on it, and every IAM condition that
 * lets a function touch a runctl resource requires it (docs/deploy.md). A stack never sees, let
 * alone terminates, another stack's instances.
 */
export const STACK_TAG = 'runctl:stack';

/** The environment variable that names the stack to its functions (serverless.yml sets it). */
export const STACK_ENV = 'RUNCTL_STACK';
