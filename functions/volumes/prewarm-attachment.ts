import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { prewarmAttachment, AttachmentEventSchema } from '../../shared/usecases/volume-prewarm';

/** Attachment task of the prewarm-volume state machine. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('Attachment', AttachmentEventSchema, deps, prewarmAttachment);

export const handler = createHandler(awsVolumeDeps);
