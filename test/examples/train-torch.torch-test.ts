import { spawnSync } from 'node:child_process';
import { it } from 'vitest';
import { checkScriptContract } from './script-contract';

it('the PyTorch example keeps the training script contract: checkpoints, SIGTERM, resume, outputs', async () => {
  if (spawnSync('python3', ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('This suite runs the PyTorch example: install torch (CPU) with `python3 -m pip install torch`');
  }
  await checkScriptContract('train_torch.py', 'model.pt');
}, 120_000);
