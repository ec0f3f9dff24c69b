import { awsBucketApiDeps, type ApiDeps } from '../../shared/composition/api';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import type { RunsBucketDeps } from '../../shared/usecases/run-artifacts';
import { createUpload } from '../../shared/usecases/uploads';

/** POST /uploads `{sha256, bytes}` — where a code bundle goes: the stored one, or a presigned PUT. */
export const createHandler = (deps: () => ApiDeps & RunsBucketDeps) =>
  apiHandler(
    deps,
    async (event, d) => {
      // Only signed callers may ask for an upload URL, although a bundle belongs to no one.
      callerIdentity(event);
      return json(200, await createUpload({ body: event.body }, d));
    },
    { jsonBody: true },
  );

export const handler = createHandler(awsBucketApiDeps);
