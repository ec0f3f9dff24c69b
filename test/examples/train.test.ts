import { it } from 'vitest';
import { checkScriptContract } from './script-contract';

it('the pure Python example keeps the training script contract: checkpoints, SIGTERM, resume, outputs', async () => {
  await checkScriptContract('train.py', 'model.json');
}, 60_000);
