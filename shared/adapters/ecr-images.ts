/**
 * ECR repositories and images. Repositories are IMMUTABLE: once pushed, a tag names the same
 * digest for as long as the image exists, so a tag recorded with its digest cannot be re-pointed.
 * The authorization token GetAuthorizationToken returns is never
 * passed on: the builder and the agent fetch their own with `aws ecr get-login-password`, so no
 * registry password appears in a state's input, an SSM command's text or a log.
 */
import {
  CreateRepositoryCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  GetAuthorizationTokenCommand,
  PutImageTagMutabilityCommand,
  PutLifecyclePolicyCommand,
  type ECRClient,
  type Repository,
} from '@aws-sdk/client-ecr';
import { AwsCallFailedError } from '../errors';
import type { ImageRegistry, ImageRepository, PushedImage, RegistryLogin } from '../ports/images';
import { awsErrorCode, translateAwsError, withThrottleRetry, type ThrottleRetryOptions } from './aws-errors';

/** ECR's lifecycle policy: expire all but the newest `keep` images, whatever their tags. */
export function lifecyclePolicyText(keep: number): string {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keepLastImages must be a positive integer, got ${keep}`);
  return JSON.stringify({
    rules: [
      {
        rulePriority: 1,
        description: `Keep the last ${keep} images`,
        selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: keep },
        action: { type: 'expire' },
      },
    ],
  });
}

export class EcrImages implements ImageRegistry {
  private readonly retry: ThrottleRetryOptions;

  constructor(
    private readonly ecr: ECRClient,
    options: { throttleRetry?: ThrottleRetryOptions } = {},
  ) {
    this.retry = options.throttleRetry ?? { attempts: 3, baseMs: 250 };
  }

  async ensureRepository(
    name: string,
    options: { keepLastImages: number; tags?: Readonly<Record<string, string>> },
  ): Promise<ImageRepository> {
    let repository = await this.describeRepository(name);
    let created = false;
    if (repository === undefined) {
      try {
        const output = await withThrottleRetry(
          () =>
            this.ecr.send(
              new CreateRepositoryCommand({
                repositoryName: name,
                imageScanningConfiguration: { scanOnPush: true },
                imageTagMutability: 'IMMUTABLE',
                encryptionConfiguration: { encryptionType: 'AES256' },
                tags: Object.entries(options.tags ?? {}).map(([Key, Value]) => ({ Key, Value })),
              }),
            ),
          this.retry,
        );
        repository = output.repository;
        created = true;
      } catch (error) {
        // Two builds raced to create it: the other one won, and that is the same outcome.
        if (awsErrorCode(error) !== 'RepositoryAlreadyExistsException') throw translateAwsError(error, `CreateRepository ${name}`);
        repository = await this.describeRepository(name);
      }
    }
    if (repository?.repositoryUri === undefined || repository.registryId === undefined) {
      throw new AwsCallFailedError(`ECR returned no URI for repository ${name}`);
    }
    // A repository made before tags were immutable, or edited since, is set back: a build trusts
    // that the tag it pushed still names the digest it pushed.
    if (!created && repository.imageTagMutability !== 'IMMUTABLE') {
      await this.call(`PutImageTagMutability ${name}`, () =>
        this.ecr.send(new PutImageTagMutabilityCommand({ repositoryName: name, imageTagMutability: 'IMMUTABLE' })),
      );
    }
    // Put on every build: the policy is the same text, and an edited one is set back.
    await this.call(`PutLifecyclePolicy ${name}`, () =>
      this.ecr.send(new PutLifecyclePolicyCommand({ repositoryName: name, lifecyclePolicyText: lifecyclePolicyText(options.keepLastImages) })),
    );
    return { repositoryName: name, repositoryUri: repository.repositoryUri, registryId: repository.registryId, created };
  }

  async findImage(repositoryName: string, tag: string): Promise<PushedImage | undefined> {
    try {
      const output = await withThrottleRetry(
        () => this.ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageTag: tag }] })),
        this.retry,
      );
      const digest = output.imageDetails?.[0]?.imageDigest;
      if (digest === undefined) return undefined;
      const repository = await this.describeRepository(repositoryName);
      if (repository?.repositoryUri === undefined) return undefined;
      return { digest, imageUri: `${repository.repositoryUri}@${digest}` };
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === 'ImageNotFoundException' || code === 'RepositoryNotFoundException') return undefined;
      throw translateAwsError(error, `DescribeImages ${repositoryName}:${tag}`);
    }
  }

  async registryLogin(): Promise<RegistryLogin> {
    const output = await this.call('GetAuthorizationToken', () => this.ecr.send(new GetAuthorizationTokenCommand({})));
    const data = output.authorizationData?.[0];
    if (data?.proxyEndpoint === undefined || data.authorizationToken === undefined) {
      throw new AwsCallFailedError('GetAuthorizationToken returned no authorization data');
    }
    return {
      registry: data.proxyEndpoint.replace(/^https?:\/\//, '').replace(/\/$/, ''),
      expiresAt: (data.expiresAt ?? new Date()).toISOString(),
    };
  }

  private async describeRepository(name: string): Promise<Repository | undefined> {
    try {
      const output = await withThrottleRetry(
        () => this.ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] })),
        this.retry,
      );
      return output.repositories?.[0];
    } catch (error) {
      if (awsErrorCode(error) === 'RepositoryNotFoundException') return undefined;
      throw translateAwsError(error, `DescribeRepositories ${name}`);
    }
  }

  private call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return withThrottleRetry(fn, this.retry).catch((error: unknown) => {
      throw translateAwsError(error, operation);
    });
  }
}
