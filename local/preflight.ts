import { spawnSync } from 'node:child_process';

/**
 * What the local backend needs besides Node: python3 (the example, the agent's helpers) and the
 * AWS CLI (the agent's S3, DynamoDB and Step Functions calls), plus bash and Linux /proc for
 * the local instances. Each missing tool is reported with how to install it.
 */

export interface PreflightProblem {
  tool: string;
  message: string;
}

interface Requirement {
  tool: string;
  argv: string[];
  install: string;
}

const REQUIREMENTS: readonly Requirement[] = [
  {
    tool: 'python3',
    argv: ['python3', '--version'],
    install:
      'install Python 3 (Debian/Ubuntu: `sudo apt-get install python3`; macOS: `brew install python`; or https://www.python.org/downloads/)',
  },
  {
    tool: 'aws',
    argv: ['aws', '--version'],
    install:
      'install the AWS CLI (`pip install awscli`, or v2 from https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html); no AWS account is needed',
  },
  {
    tool: 'bash',
    argv: ['bash', '--version'],
    install: 'install bash (Debian/Ubuntu: `sudo apt-get install bash`)',
  },
];

/** The problems found; empty when everything is there. */
export function preflight(run: (argv: string[]) => boolean = works): PreflightProblem[] {
  const problems: PreflightProblem[] = REQUIREMENTS.filter((r) => !run(r.argv)).map((r) => ({
    tool: r.tool,
    message: `${r.tool} was not found on PATH: ${r.install}`,
  }));
  if (process.platform !== 'linux') {
    problems.push({
      tool: 'linux',
      message: `the local backend finds an instance's processes through Linux /proc; on ${process.platform}, run it in a Linux container or VM`,
    });
  }
  return problems;
}

function works(argv: string[]): boolean {
  const [command = '', ...args] = argv;
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 20_000 });
  return result.error === undefined && result.status === 0;
}
