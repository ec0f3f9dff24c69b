/** An error the CLI reports as one message (no stack trace) that says what to do next. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Bad command-line usage: exit code 2, like other Unix tools. */
export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string) {
    super(`${message} (see \`runctl help\`)`, 2);
  }
}
