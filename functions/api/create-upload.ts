import { awsApiDeps, type ApiDeps } from '../../shared/composition/api';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { awsRunsBucketDeps, type RunsBucketDeps } from '../../shared/usecases/run-artifacts';
import { createUpload } from '../../shared/usecases/uploads';

/** POST /uploads `{sha256, bytes}` — where a code bundle goes: the stored one, or a presigned PUT. */
export const createHandler = (deps: () => ApiDeps & RunsBucketDeps) =>
  apiHandler(
    deps,
    async (event) => {
      // Only signed callers may ask for an upload URL, although a bundle belongs to no one.
      callerIdentity(event);
      return json(200, await createUpload({ body: event.body }, deps()));
    },
    { jsonBody: true },
  );

export const handler = createHandler(() => ({ ...awsApiDeps(), ...awsRunsBucketDeps() }));
