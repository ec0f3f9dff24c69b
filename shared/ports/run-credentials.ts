import type { PolicyDocument } from '../domain/run-access';

/** Short-lived credentials of one run, in the shape the agent's credential_process prints. */
export interface RunCredentialSet {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** ISO time at which they expire. */
  expiration: string;
}

/** Mints a run's credentials: the run-access role narrowed by a session policy. */
export interface RunCredentials {
  /** `sessionName` shows in CloudTrail (e.g. `<runId>-<attempt>`); `policy` narrows the session. */
  issue(sessionName: string, policy: PolicyDocument): Promise<RunCredentialSet>;
}

/** A waiting Step Functions task, answered with the token stored on the run record. */
export interface TaskCallbacks {
  /** False when the token is stale (task already closed or timed out). */
  succeedTask(taskToken: string, output: string): Promise<boolean>;
  failTask(taskToken: string, error: string, cause: string): Promise<boolean>;
  heartbeatTask(taskToken: string): Promise<boolean>;
}
