/**
 * Container images in ECR: the repositories build-image pushes to and the images runs pull.
 * On AWS, shared/adapters/ecr-images.ts.
 */
import { RunctlError } from '../errors';

export interface ImageRepository {
  repositoryName: string;
  /** `<account>.dkr.ecr.<region>.amazonaws.com/<name>`. */
  repositoryUri: string;
  registryId: string;
  /** True when this call created it. */
  created: boolean;
}

export interface PushedImage {
  /** `sha256:…`. */
  digest: string;
  /** `<repositoryUri>@<digest>`: pinned, unlike a tag. */
  imageUri: string;
}

/** Where to log in; the password itself is fetched on the instance (`aws ecr get-login-password`). */
export interface RegistryLogin {
  /** Registry host, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`. */
  registry: string;
  expiresAt: string;
}

export interface ImageRegistry {
  /**
   * Creates the repository when missing (immutable tags, scan on push, lifecycle keeping the last
   * `keepLastImages`); an existing one with mutable tags is made immutable.
   */
  ensureRepository(name: string, options: { keepLastImages: number; tags?: Readonly<Record<string, string>> }): Promise<ImageRepository>;
  /** The image tagged `tag`, or undefined (repository or tag missing). */
  findImage(repositoryName: string, tag: string): Promise<PushedImage | undefined>;
  /** Checks that an authorization token can be had and returns the registry to log in to. */
  registryLogin(): Promise<RegistryLogin>;
}

/** The code bundle has no Dockerfile where one was looked for. */
export class DockerfileMissingError extends RunctlError {
  override name = 'Image.DockerfileMissing';
}

/** `docker build` or `docker push` failed, or the build did not finish in time. */
export class ImageBuildFailedError extends RunctlError {
  override name = 'Image.BuildFailed';
}
