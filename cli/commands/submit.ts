import { TERMINAL } from '../api-types';
import { checkHyperparametersAgainstScript } from '../argparse-check';
import { uploadDirectory } from '../bundle-upload';
import { printJson, type CommandContext } from '../context';
import { checkSpec, clientTokenFor, draftSpec, type SubmitFlags } from '../spec-input';
import { followRun } from './follow';

export interface SubmitOptions extends SubmitFlags {
  follow: boolean;
  /** Start a new run even when this exact spec was submitted before. */
  rerun: boolean;
  clientToken?: string;
  /** Check the hyperparameters against the entrypoint's argparse flags (on unless --no-check-args). */
  checkArgs: boolean;
}

/** Placeholder bundle for checking the rest of the spec before anything is packed. */
const PLACEHOLDER_BUNDLE = 's3://runctl-placeholder/bundles/pending.tar.gz';

/** `runctl submit`: pack, upload (unless stored), submit idempotently, optionally follow. Returns the exit code. */
export async function submit(context: CommandContext, options: SubmitOptions): Promise<number> {
  const draft = draftSpec(options);
  // Every field but the bundle is checked before the directory is packed.
  const code = { ...(typeof draft.spec.code === 'object' ? draft.spec.code : {}) };
  const checked = checkSpec({ ...draft.spec, code: { bundle: PLACEHOLDER_BUNDLE, ...code } });
  if (options.checkArgs && draft.codeDir !== undefined && checked.code.command === undefined) {
    await checkHyperparametersAgainstScript({ codeDir: draft.codeDir, entrypoint: checked.code.entrypoint, hyperparameters: checked.hyperparameters }, context.err);
  }

  let spec = draft.spec;
  if (draft.codeDir !== undefined) {
    const { bundle } = await uploadDirectory(context, draft.codeDir);
    spec = { ...spec, code: { ...code, bundle } };
  }
  const normalised = checkSpec(spec);
  const clientToken = options.clientToken ?? clientTokenFor(normalised, options.rerun ? new Date().toISOString() : undefined);
  const { status, data: run } = await context.client.submit({ clientToken, spec });

  if (context.json) {
    // One JSON document: the run as submitted, or as it ended when followed.
    if (!options.follow) printJson(context, run);
  } else if (status === 201) context.err(`Submitted run ${run.runId} (${run.spec.name}): ${run.status}`);
  else {
    context.err(
      `This exact submission already exists as run ${run.runId} (${run.status}); no second run was started. ` +
        'Pass --rerun to start a new run with the same code and spec.',
    );
  }
  if (!context.json) context.out(run.runId);
  if (!options.follow) {
    if (!context.json) context.err(`Follow it with: runctl status ${run.runId} --follow`);
    return 0;
  }
  const final = TERMINAL.has(run.status) && status !== 201 ? run : await followRun(context, run.runId);
  if (context.json && final !== undefined) printJson(context, final);
  return final?.status === 'SUCCEEDED' ? 0 : 1;
}
